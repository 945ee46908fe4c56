"""Training of source separators with ``training_terms(**batch)`` (``neuraudio.separation``): batches
``{"mixture": (B, C, T), "stems": (B, S, C, T)}`` from ``SeparationDataModule`` (and ``"query": (B, C, Q)`` for a
query-conditioned model).

    l1        mean absolute error of every stem's waveform (Demucs' loss)                        (weight 1)
    mrstft    multi-resolution STFT distance of every stem (spectral convergence + log-magnitude)  (0 = off)
              (its spectral convergence divides by the target's norm: a stem silent in a crop makes it explode,
              so it suits data where every stem always sounds)
    magnitude MSE of compressed magnitudes |Y|^0.3 against |S|^0.3 (STFT 2048/512 at 44.1 kHz,
              scaled with the rate), bounded where a stem is silent; it costs a quiet estimate of a loud
              stem more than the waveform L1 does, which masking models otherwise learn to favour  (0 = off)

Validation logs the terms and, per stem, the SDR of the estimate (``val/sdr_<stem>``, and their mean ``val/sdr``: the
learning curve), with ``val/train_hours``. Items whose stem is silent in a crop do not count towards that stem's
SDR (it is undefined there).
"""

from __future__ import annotations

import math

import torch

from neuraudio import metrics
from neuraudio.stream.processor import Processor
from neuraudio.stream.stft import stft
from neuraudio.train.module import TaskModule

SILENT = 1e-8  # mean power below which a stem counts as silent in an item


class SeparationModule(TaskModule):
    """Trains a separator (module docstring).

    Args:
        model: a Processor with ``stems`` and ``training_terms(mixture, stems)``.
        l1_weight, mrstft_weight: loss weights.
        init_from: a model folder (or a shipped model's name) whose weights start the training.
    """

    task = "separation"

    def __init__(self, model: Processor, l1_weight: float = 1.0, mrstft_weight: float = 0.0,
                 magnitude_weight: float = 0.0, init_from: str | None = None):
        super().__init__(model, init_from)
        if not model.stems or not hasattr(model, "training_terms"):
            raise ValueError(f"{type(model).__name__} is not a trainable separator (no stems or no training_terms).")
        self.l1_weight, self.mrstft_weight = float(l1_weight), float(mrstft_weight)
        self.magnitude_weight = float(magnitude_weight)
        self.n_fft = 1 << max(6, round(math.log2(2048 * model.sample_rate / 44100)))

    def _magnitude(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        def compressed(x):
            spec = stft(x, self.n_fft, self.n_fft // 4)
            return (spec.real.square() + spec.imag.square() + 1e-12) ** 0.15  # |X|^0.3, a finite gradient at 0

        return (compressed(estimate) - compressed(target)).square().mean()

    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None)
        stems = getattr(data, "stems", None)
        # a query-conditioned model has one output, the source its query names, whatever the data's stems
        if stems is not None and not self.model.takes_query and tuple(stems) != tuple(self.model.stems):
            raise ValueError(f"the data's stems {tuple(stems)} are not the model's {tuple(self.model.stems)}; "
                             "set data.stems to the model's stems, in its order.")

    def _common_step(self, batch, stage):
        out = self.model.training_terms(**batch)
        estimate, target = out["estimate"], out["target"]
        terms = {"l1": (estimate - target).abs().mean()}
        terms["mrstft"] = metrics.mrstft(estimate, target) if self.mrstft_weight else estimate.new_zeros(())
        terms["magnitude"] = self._magnitude(estimate, target) if self.magnitude_weight else estimate.new_zeros(())
        terms["loss"] = (self.l1_weight * terms["l1"] + self.mrstft_weight * terms["mrstft"]
                         + self.magnitude_weight * terms["magnitude"])
        if stage == "val":
            with torch.no_grad():
                scores = []
                for i, name in enumerate(self.model.stems):
                    est, tgt = estimate[:, i].flatten(1), target[:, i].flatten(1)
                    present = tgt.pow(2).mean(-1) > SILENT
                    if bool(present.any()):
                        terms[f"sdr_{name}"] = metrics.sdr(est[present], tgt[present])
                        scores.append(terms[f"sdr_{name}"])
                if scores:
                    terms["sdr"] = torch.stack(scores).mean()
                terms["train_hours"] = torch.tensor(self.train_seconds() / 3600)
        return terms
