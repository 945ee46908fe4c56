"""GAN training of amplitude/phase vocoders (manual optimization: a generator and a discriminator optimizer).

The generator's losses follow APNet (Ai & Ling, 2023), all from ``neuraudio.stream.spectral`` and the model's own
STFT:

    amplitude    MSE of log amplitudes                          (weight 45)
    phase        anti-wrapped instantaneous phase, group delay, instantaneous frequency   (100, ip scaled by ip_weight)
    consistency  mean |S - STFT(ISTFT(S))|: a spectrum a waveform can have      (20)
    mel          L1 of log mel spectrograms of the audio        (45)
    adversarial  least squares against multi-period + multi-resolution discriminators, + feature matching (1, 2)

The discriminators join at ``adversarial_from_step`` (``None``: never): a recipe first trains without them, then
fine-tunes with them from the exported model (``--model.init_from``). Validation logs every term, and WB-PESQ of
the synthesized audio when ``pesq`` is installed and the model runs at 16 kHz (``val/pesq``, for learning curves);
``val_loss`` is the mel term.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from lightning.pytorch.cli import OptimizerCallable

from neuraudio.stream import spectral
from neuraudio.stream.mel import MelSpectrogram
from neuraudio.stream.processor import Processor
from neuraudio.train.discriminators import Discriminators, discriminator_loss, feature_matching, generator_loss
from neuraudio.train.module import TaskModule


def _adamw(params: Iterable) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=2e-4, betas=(0.8, 0.99), weight_decay=0.01)


class VocoderGANModule(TaskModule):
    """Trains a vocoder Processor with ``training_terms(audio)`` (``APNet``, ``APNetStream``).

    Args:
        model: the vocoder.
        generator_optimizer, discriminator_optimizer: optimizer factories (recipe ``class_path`` + ``init_args``).
        lr_decay: both learning rates are multiplied by this after every epoch.
        adversarial_from_step: global step at which the discriminators start (``None``: never).
        discriminator_width: channels of the discriminators' first layers.
        amplitude_weight, phase_weight, ip_weight, consistency_weight, mel_weight, adversarial_weight,
        feature_weight: loss weights (``ip_weight`` scales the instantaneous-phase term inside ``phase``: a model
            that refines a classical phase estimate cannot know each partial's absolute phase, so its recipes lower it).
        grad_clip: max norm of each optimizer's gradients.
        init_from: a model folder (or a shipped model's name) to start from.
    """

    task = "vocoder"

    def __init__(self, model: Processor, generator_optimizer: OptimizerCallable = _adamw,
                 discriminator_optimizer: OptimizerCallable = _adamw, lr_decay: float = 0.999,
                 adversarial_from_step: int | None = None, discriminator_width: int = 16,
                 amplitude_weight: float = 45.0, phase_weight: float = 100.0, ip_weight: float = 1.0,
                 consistency_weight: float = 20.0, mel_weight: float = 45.0, adversarial_weight: float = 1.0,
                 feature_weight: float = 2.0, grad_clip: float = 100.0, init_from: str | None = None):
        super().__init__(model, init_from)
        if not hasattr(model, "training_terms"):
            raise ValueError(f"{type(model).__name__} is not a trainable vocoder (it has no training_terms).")
        self.automatic_optimization = False
        self.generator_optimizer: Callable = generator_optimizer
        self.discriminator_optimizer: Callable = discriminator_optimizer
        self.lr_decay = float(lr_decay)
        self.adversarial_from_step = adversarial_from_step
        self.discriminators = Discriminators(width=discriminator_width) if adversarial_from_step is not None else None
        self.weights = {"amplitude": amplitude_weight, "phase": phase_weight, "consistency": consistency_weight,
                        "mel": mel_weight, "adversarial": adversarial_weight, "features": feature_weight}
        self.ip_weight = float(ip_weight)
        self.grad_clip = float(grad_clip)
        sr = model.sample_rate
        self.loss_mel = MelSpectrogram(sr, 1024, 256, 80, 0.0, sr / 2, center=True)

    # ---- optimizers ---------------------------------------------------------------------------------------------
    def configure_optimizers(self):
        generator = self.generator_optimizer(self.model.parameters())
        schedulers = [torch.optim.lr_scheduler.ExponentialLR(generator, self.lr_decay)]
        if self.discriminators is None:
            return {"optimizer": generator, "lr_scheduler": schedulers[0]}
        discriminator = self.discriminator_optimizer(self.discriminators.parameters())
        schedulers.append(torch.optim.lr_scheduler.ExponentialLR(discriminator, self.lr_decay))
        return [generator, discriminator], schedulers

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        for scheduler in (schedulers if isinstance(schedulers, list) else [schedulers]):
            if scheduler is not None:
                scheduler.step()

    # ---- losses -------------------------------------------------------------------------------------------------
    def generator_terms(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        target = out["target"]
        log_target = spectral.log_amplitude(target)
        phase = spectral.phase_distances(out["phase"], target.angle())
        terms = {
            "amplitude": torch.mean((out["log_amplitude"] - log_target) ** 2),
            "ip": phase["ip"], "gd": phase["gd"], "iaf": phase["iaf"],
            # rebuilt: the STFT of the synthesized audio on the same frames (causal models drop the last few)
            "consistency": torch.mean((out["spectrum"][..., : out["rebuilt"].shape[-1]] - out["rebuilt"]).abs()),
            "mel": torch.mean(torch.abs(self.loss_mel(out["wave"]) - self.loss_mel(out["audio"]))),
        }
        terms["phase"] = self.ip_weight * terms["ip"] + terms["gd"] + terms["iaf"]
        terms["loss"] = sum(self.weights[k] * terms[k] for k in ("amplitude", "phase", "consistency", "mel"))
        return terms

    def adversarial(self, step: int) -> bool:
        return self.discriminators is not None and step >= self.adversarial_from_step

    def training_step(self, batch, batch_idx):
        audio = batch["audio"]
        optimizers = self.optimizers()
        g_opt = optimizers[0] if isinstance(optimizers, list) else optimizers
        out = self.model.training_terms(audio)
        terms = self.generator_terms(out)
        loss = terms["loss"]
        if self.adversarial(self.global_step):
            d_opt = optimizers[1]
            real = self.discriminators(out["audio"])
            fake = self.discriminators(out["wave"].detach())
            d_loss = discriminator_loss(real, fake)
            d_opt.zero_grad()
            self.manual_backward(d_loss)
            self.clip_gradients(d_opt, self.grad_clip, "norm")
            d_opt.step()
            terms["discriminator"] = d_loss.detach()
            real = self.discriminators(out["audio"])
            fake = self.discriminators(out["wave"])
            terms["adversarial"] = generator_loss(fake)
            terms["features"] = feature_matching(real, fake)
            loss = loss + self.weights["adversarial"] * terms["adversarial"] + self.weights["features"] * terms["features"]
            terms["loss"] = loss
        g_opt.zero_grad()
        self.manual_backward(loss)
        self.clip_gradients(g_opt, self.grad_clip, "norm")
        g_opt.step()
        size = audio.shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, batch_size=size)
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=size)

    def validation_step(self, batch, batch_idx):
        audio = batch["audio"]
        out = self.model.training_terms(audio)
        terms = self.generator_terms(out)
        size = audio.shape[0]
        score = self._pesq(out["audio"], out["wave"])
        if score is not None:
            terms["pesq"] = torch.tensor(score)
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, batch_size=size, sync_dist=True)
        self.log("val_loss", terms["mel"], prog_bar=True, batch_size=size, sync_dist=True)

    def _pesq(self, reference: torch.Tensor, estimate: torch.Tensor) -> float | None:
        if self.model.sample_rate != 16000:
            return None
        try:
            import pesq  # noqa: F401  (optional: the learning curve's metric)
        except ImportError:
            return None
        from neuraudio.metrics import pesq as pesq_wb

        scores = []
        for r, e in zip(reference.float().cpu(), estimate.float().cpu()):
            try:
                scores.append(pesq_wb(e[0], r[0], 16000))
            except Exception:  # noqa: BLE001 - pesq refuses silent or too short clips: skip them
                continue
        return sum(scores) / len(scores) if scores else None
