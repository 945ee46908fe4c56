"""Training of speech enhancers that estimate magnitude and phase (``training_terms(noisy, clean)``: the models of
``neuraudio.enhancement.magphase``), with the losses of MP-SENet (Lu, Ai & Ling, 2023) and its optional metric
discriminator. Manual optimization: the enhancer's optimizer, and the discriminator's when it is on.

    magnitude    MSE of compressed magnitudes |Y|^0.3 against |S|^0.3             (weight 0.9)
    complex      MSE of compressed complex spectra                                 (0.1)
    phase        anti-wrapped instantaneous phase + group delay + instantaneous frequency, weighted by the
                 clean magnitude (phase in silent bins is noise)                    (0.3)
    time         L1 of the waveforms                                               (0.2)
    consistency  MSE between the compressed spectrum and that of its own resynthesis (0.1)
    under        MSE of the compressed magnitude the estimate lacks (an asymmetric term: suppressing the target
                 costs more than leaving noise; echo cancellers, whose masks otherwise learn to cut the near end)
                                                                                   (0 = off)
    residual     log10 of the estimate's power where the target is digital silence (0 = off; unbounded pressure
                 towards silence: a weight of 0.05 made an echo canceller output nothing within 40 steps)
    erle_hinge   an echo canceller's items whose target is silent throughout (far-end single talk): the output's
                 power over the microphone's from 2 s in (or the second half; as ``val/erle``), in decades, hinged
                 at ``-erle_cap_db / 10`` (no pressure once the echo loss reaches the cap; unlike ``residual`` it
                 never reads a near-end pause; ``erle_weight``; ``val/erle`` is the ERLE itself, in dB)    (0 = off)
    echo         MSE of compressed magnitudes of an echo canceller's first mask alone, ``E * m_echo``, against the
                 microphone without its echo (near end + noise; synthesized items carry it; 0 = off)
    echo_complex the same on compressed complex spectra (teaches a complex echo mask its rotation; 0 = off)
    gain         ``(1 - g)^2`` with ``g = <out, s> / <s, s>`` the target's own gain in the output waveform (items
                 whose target talks): what ``metrics.near_end_gain`` scores. aec-16k's masks in double talk keep
                 0.45 of the near end in bins where it is 6 dB above everything else (ideal: 0.96;
                 ``benchmarks/aec.py --data data/echo_test --masks aec-16k``); in compressed magnitudes (power
                 0.3) that cut is an error of about a fifth, which the terms above weigh lightly (0 = off)
    metric       least squares towards 1 of a learned WB-PESQ predictor ``D(clean, estimate)`` (0.05; 0 = off)

The metric discriminator (``metric_weight`` > 0) learns ``D(clean, clean) = 1`` and ``D(clean, estimate) =
(PESQ - 1) / 3.5`` on each batch (WB-PESQ from the ``pesq`` package, on the CPU), and only its own optimizer moves
its weights. Validation logs every term, WB-PESQ and SI-SDR of the estimates (``val/pesq``: the learning curve);
``val/train_hours`` is the training time so far (this run and the runs it resumed); ``val_loss`` is the
weighted sum without the metric term.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from neuraudio import metrics
from neuraudio.stream import spectral
from neuraudio.stream.processor import Processor
from neuraudio.train import losses
from neuraudio.train.module import TaskModule

POWER = 0.3
SILENT_POWER = 1e-9  # mean power per bin below which a target frame counts as silent (about -90 dB)


def _adamw(params: Iterable) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=5e-4, betas=(0.8, 0.99), weight_decay=0.01)


class MetricDiscriminator(nn.Module):
    """``D(clean, estimate)`` in ``[0, 1]`` from two compressed magnitude spectrograms ``(batch, bins, frames)``."""

    def __init__(self, width: int = 16):
        super().__init__()
        layers, channels = [], 2
        for out in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(channels, out, 4, 2, 1, bias=False), nn.InstanceNorm2d(out, affine=True),
                       nn.PReLU(out)]
            channels = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(channels, 4 * width), nn.PReLU(4 * width), nn.Linear(4 * width, 1))

    def forward(self, clean: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        h = self.body(torch.stack([clean, estimate], dim=1))
        return torch.sigmoid(self.head(h.mean(dim=(-2, -1)))).squeeze(-1)


def _pesq_scores(clean: torch.Tensor, estimate: torch.Tensor, rate: int) -> torch.Tensor | None:
    """WB-PESQ of each item ``(batch, 1, time)``, NaN for items ``pesq`` refuses (a silent reference: the far-end
    only clips of an echo canceller); ``None`` where the ``pesq`` package is missing or refuses every item."""
    try:
        import pesq  # noqa: F401  (optional, the [eval] extra)
    except ImportError:
        return None
    scores = []
    for c, e in zip(clean.detach().float().cpu(), estimate.detach().float().cpu()):
        try:
            scores.append(metrics.pesq(e[0], c[0], rate))
        except Exception:  # noqa: BLE001 - pesq refuses silent or too short clips
            scores.append(float("nan"))
    scores = torch.tensor(scores)
    return scores if bool(torch.isfinite(scores).any()) else None


def _silent_frames(target: torch.Tensor) -> torch.Tensor:
    """``(..., bins, frames)`` complex -> bool ``(..., frames)``: frames where the target is digital silence (an
    echo canceller's far-end-only stretches)."""
    return (target.real.square() + target.imag.square()).mean(-2) < SILENT_POWER


class EnhancementModule(TaskModule):
    """Trains a model with ``training_terms(**batch)``: an enhancer on ``{"noisy", "clean"}`` batches, or an echo
    canceller (``DualMaskAEC``) on ``{"mic", "ref", "target"[, "e", "y"]}`` ones; models without a ``rebuilt``
    spectrum (a masking model's output is consistent by construction) skip the consistency term.

    Args:
        model: the enhancer (``MagPhaseDenoiser``, ``MagPhaseDenoiserStream``).
        optimizer, discriminator_optimizer: optimizer factories (recipe ``class_path`` + ``init_args``).
        lr_decay: learning rates are multiplied by this after every epoch.
        decayed_epochs: start the learning rates as if this many epochs had passed (``lr * lr_decay **
            decayed_epochs``): a model continued from a folder with ``init_from`` picks its run's schedule up where
            it left it (the folder's ``config.json`` records the epoch) instead of restarting at the full rate, which
            set ``denoise-16k`` back.
        magnitude_weight, complex_weight, phase_weight, time_weight, consistency_weight, metric_weight,
            residual_weight, under_weight, echo_weight, echo_complex_weight, gain_weight, erle_weight: loss weights
            (module docstring); ``metric_weight=0`` builds no discriminator.
        erle_cap_db: the echo return loss enhancement (dB) beyond which the ``erle_hinge`` term stops pushing.
        grad_clip: max norm of the gradients.
        init_from: a model folder (or a shipped model's name) to start from.
    """

    task = "enhancement"

    def __init__(self, model: Processor, optimizer: OptimizerCallable = _adamw,
                 discriminator_optimizer: OptimizerCallable = _adamw, lr_decay: float = 0.99, decayed_epochs: int = 0,
                 magnitude_weight: float = 0.9, complex_weight: float = 0.1, phase_weight: float = 0.3,
                 time_weight: float = 0.2, consistency_weight: float = 0.1, metric_weight: float = 0.0,
                 residual_weight: float = 0.0, under_weight: float = 0.0, echo_weight: float = 0.0,
                 echo_complex_weight: float = 0.0, gain_weight: float = 0.0, erle_weight: float = 0.0,
                 erle_cap_db: float = 50.0, grad_clip: float = 5.0, init_from: str | None = None):
        super().__init__(model, init_from)
        if not hasattr(model, "training_terms"):
            raise ValueError(f"{type(model).__name__} is not a trainable enhancer (it has no training_terms).")
        self.task = model.task  # "enhancement" or "echo": what the exported folder records
        self.automatic_optimization = False
        self.optimizer: Callable = optimizer
        self.discriminator_optimizer: Callable = discriminator_optimizer
        self.lr_decay, self.grad_clip = float(lr_decay), float(grad_clip)
        if decayed_epochs < 0:
            raise ValueError(f"decayed_epochs must be >= 0, got {decayed_epochs}.")
        self.decayed_epochs = int(decayed_epochs)
        self.weights = {"magnitude": magnitude_weight, "complex": complex_weight, "phase": phase_weight,
                        "time": time_weight, "consistency": consistency_weight, "metric": metric_weight,
                        "residual": residual_weight, "under": under_weight, "echo": echo_weight,
                        "echo_complex": echo_complex_weight, "gain": gain_weight, "erle_hinge": erle_weight}
        if erle_cap_db <= 0:
            raise ValueError(f"erle_cap_db must be > 0 dB, got {erle_cap_db}.")
        self.erle_cap = float(erle_cap_db) / 10.0  # in decades of power
        self.discriminator = MetricDiscriminator() if metric_weight > 0 else None
        self.skipped = 0  # training steps whose gradient was not finite (skipped, logged as train/skipped)

    def _decayed(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        for group in optimizer.param_groups:  # before the scheduler records its initial rates
            group["lr"] *= self.lr_decay ** self.decayed_epochs
        return optimizer

    def configure_optimizers(self):
        enhancer = self._decayed(self.optimizer(self.model.parameters()))
        schedulers = [torch.optim.lr_scheduler.ExponentialLR(enhancer, self.lr_decay)]
        if self.discriminator is None:
            return {"optimizer": enhancer, "lr_scheduler": schedulers[0]}
        discriminator = self._decayed(self.discriminator_optimizer(self.discriminator.parameters()))
        schedulers.append(torch.optim.lr_scheduler.ExponentialLR(discriminator, self.lr_decay))
        return [enhancer, discriminator], schedulers

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        for scheduler in (schedulers if isinstance(schedulers, list) else [schedulers]):
            if scheduler is not None:
                scheduler.step()

    def terms(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        estimate, target = out["spectrum"], out["target"]
        est_c, tgt_c = spectral.compress(estimate, POWER), spectral.compress(target, POWER)
        weight = target.abs() ** POWER
        weight = weight / weight.mean(dim=(-2, -1), keepdim=True).clamp_min(1e-8)
        t = {
            "magnitude": torch.mean((est_c.abs() - tgt_c.abs()) ** 2),
            # what the estimate lacks of the target only (suppressed speech), on top of the symmetric term
            "under": torch.mean(torch.relu(tgt_c.abs() - est_c.abs()) ** 2),
            "complex": losses.complex_spectrum_loss(estimate, target, POWER),
            # the angle's gradient is NaN at exactly zero (a masked-out bin): no gradient through an unweighted term
            **spectral.phase_distances((estimate if self.weights["phase"] else estimate.detach()).angle(),
                                       target.angle(), weight),
            "time": torch.mean((out["wave"] - out["clean"]).abs()),
            # rebuilt: the STFT of the estimate's own waveform, on the same frames (causal models drop the last few)
            "consistency": torch.mean((est_c[..., : out["rebuilt"].shape[-1]]
                                       - spectral.compress(out["rebuilt"], POWER)).abs() ** 2)
            if "rebuilt" in out else est_c.real.new_zeros(()),
        }
        t["phase"] = t["ip"] + t["gd"] + t["iaf"]
        if "stage" in out:  # an echo canceller's echo mask on its own (items without the target: validation clips)
            stage, stage_target = (out[k].abs().clamp_min(1e-8) ** POWER for k in ("stage", "stage_target"))
            t["echo"] = torch.mean((stage - stage_target) ** 2)
            t["echo_complex"] = losses.complex_spectrum_loss(out["stage"], out["stage_target"], POWER)
        else:
            t["echo"] = t["echo_complex"] = est_c.real.new_zeros(())
        wave, clean = out["wave"].flatten(1), out["clean"].flatten(1)
        talking = clean.square().mean(-1) > SILENT_POWER
        if bool(talking.any()):  # the target's own gain in the output (module docstring)
            own = (wave[talking] * clean[talking]).sum(-1) / clean[talking].square().sum(-1)
            t["gain"] = torch.mean((1.0 - own) ** 2)
        else:
            t["gain"] = est_c.real.new_zeros(())
        if "input" in out and bool((~talking).any()):  # far-end single talk: what is left of the microphone
            skip = self._converged(wave.shape[-1])  # as val/erle
            mic = out["input"].flatten(1)[~talking, skip : wave.shape[-1]]
            ratio = torch.log10((wave[~talking, skip:].square().mean(-1) + SILENT_POWER)
                                / (mic.square().mean(-1) + SILENT_POWER))
            t["erle_hinge"] = torch.relu(ratio + self.erle_cap).mean()
        else:
            t["erle_hinge"] = est_c.real.new_zeros(())
        silent = _silent_frames(target)
        if bool(silent.any()):  # what is left where the target is silent, in decades of power (10 dB per unit)
            power = (estimate.real.square() + estimate.imag.square()).mean(-2)
            t["residual"] = torch.log10(power[silent] + SILENT_POWER).mean()
        else:
            t["residual"] = est_c.real.new_zeros(())
        t["loss"] = sum(self.weights[k] * t[k]
                        for k in ("magnitude", "complex", "phase", "time", "consistency", "residual", "under", "echo",
                                 "echo_complex", "gain", "erle_hinge"))
        return t

    def _converged(self, length: int) -> int:
        """Where an echo canceller's ERLE is read from in a crop of ``length`` samples: 2 s in (the linear stage
        converges first), or half-way in a shorter crop."""
        return min(2 * self.model.sample_rate, length // 2)

    def _magnitudes(self, out: dict[str, torch.Tensor], detach: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Compressed magnitudes ``(items, bins, frames)`` of the clean and the estimated spectra."""
        estimate = out["spectrum"].detach() if detach else out["spectrum"]
        bins, frames = estimate.shape[-2:]
        clean = (out["target"].abs() ** POWER).reshape(-1, bins, frames)
        return clean, (estimate.abs().clamp_min(1e-8) ** POWER).reshape(-1, bins, frames)

    def discriminator_step(self, out: dict[str, torch.Tensor], d_opt) -> torch.Tensor | None:
        """One update of the metric discriminator only; ``None`` when no PESQ could be computed."""
        scores = _pesq_scores(out["clean"], out["wave"], self.model.sample_rate)
        if scores is None:
            return None
        scored = torch.isfinite(scores)
        clean, estimate = (m[scored.to(m.device)] for m in self._magnitudes(out, detach=True))
        target = ((scores[scored] - 1.0) / 3.5).clamp(0.0, 1.0).to(clean.device)
        loss = torch.mean((self.discriminator(clean, clean) - 1.0) ** 2) + \
            torch.mean((self.discriminator(clean, estimate) - target) ** 2)
        d_opt.zero_grad()
        self.manual_backward(loss)
        self.clip_gradients(d_opt, self.grad_clip, "norm")
        d_opt.step()
        return loss.detach()

    def training_step(self, batch, batch_idx):
        optimizers = self.optimizers()
        opt = optimizers[0] if isinstance(optimizers, list) else optimizers
        out = self.model.training_terms(**batch)
        terms = self.terms(out)
        loss = terms["loss"]
        if self.discriminator is not None:
            d_loss = self.discriminator_step(out, optimizers[1])
            if d_loss is not None:
                terms["discriminator"] = d_loss
            clean, estimate = self._magnitudes(out, detach=False)
            for p in self.discriminator.parameters():  # the enhancer's loss must not move the discriminator
                p.requires_grad_(False)
            terms["metric"] = torch.mean((self.discriminator(clean, estimate) - 1.0) ** 2)
            for p in self.discriminator.parameters():
                p.requires_grad_(True)
            loss = loss + self.weights["metric"] * terms["metric"]
        opt.zero_grad()
        self.manual_backward(loss)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        finite = bool(torch.isfinite(torch.stack([g.abs().sum() for g in grads]).sum())) if grads else True
        if finite:
            self.clip_gradients(opt, self.grad_clip, "norm")
            opt.step()
        else:  # one bad batch must not poison the weights: skip it, and count it
            opt.zero_grad()
            self.skipped += 1
        terms["skipped"] = torch.tensor(float(self.skipped))
        size = next(iter(batch.values())).shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, batch_size=size)
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=size)

    def validation_step(self, batch, batch_idx):
        out = self.model.training_terms(**batch)
        terms = self.terms(out)
        size = next(iter(batch.values())).shape[0]
        scores = _pesq_scores(out["clean"], out["wave"], self.model.sample_rate)
        if scores is not None:
            terms["pesq"] = scores[torch.isfinite(scores)].mean()
        talking = out["clean"].flatten(1).square().mean(-1) > SILENT_POWER
        if bool(talking.any()):
            terms["si_sdr"] = metrics.si_sdr(out["wave"][talking], out["clean"][talking]).mean()
        if "input" in out and bool((~talking).any()):  # echo cancellers: ERLE where the near end is silent
            skip = self._converged(out["wave"].shape[-1])
            terms["erle"] = metrics.erle(out["input"].flatten(1)[~talking, skip:], out["wave"].flatten(1)[~talking, skip:])
        terms["train_hours"] = torch.tensor(self.train_seconds() / 3600)  # the learning curve's x axis
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, batch_size=size, sync_dist=True)
        self.log("val_loss", terms["loss"], prog_bar=True, batch_size=size, sync_dist=True)
