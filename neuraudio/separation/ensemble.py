"""An ensemble of separators (the Danna-Sep idea, Yu & Cheuk 2021: complementary separators combined per stem),
saved and loaded as one folder.

``Ensemble(members=[{"class": ..., "kwargs": ...}, ...], weights=...)`` runs every member on the mixture and
returns, per stem ``s``, ``sum_k w[k, s] y_k[s]``. The ensemble's stems are the first member's; the others must
share its sample rate and input, and at least one of its stems (by name, in any order): a specialist such as a
vocals/accompaniment model contributes to the stems it has (its weight is 0 for the rest, and its other stems are
not used). Their outputs are aligned: the ensemble's latency is the largest member's, and the others are delayed to
it. :meth:`fit` sets ``w`` by least squares per stem on validation songs (on those songs the combination is never
worse than the best member alone, whose weights ``(0, .., 1, .., 0)`` it could have chosen).

Optional post-filter (``wiener=True``): one multichannel Wiener iteration on a centred STFT of the combined stems
(Nugraha, Liutkus & Vincent 2016; Open-Unmix's norbert): each stem's power spectrogram and spatial covariance give
a 2x2 filter per bin and frame that shares the mixture among the stems, which then sum to it.

Example:
    >>> ensemble = Ensemble([neuraudio.load("hybrid-4stem").config, neuraudio.load("hpss-4stem").config])
    >>> ensemble.fit([(mixture, stems), ...])                 # validation songs: (2, T) and (4, 2, T)
    >>> neuraudio.hub.save_folder(ensemble, "models/ensemble-4stem", name="ensemble-4stem", task="separation")
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import torch

from neuraudio.stream.processor import Processor
from neuraudio.stream.stft import STFT


class Ensemble(Processor):
    """Separators combined per stem (module docstring).

    Args:
        members: ``[{"class": "neuraudio.pkg.module:Class", "kwargs": {...}}, ...]`` (the member's weights are
            saved in the ensemble's folder) or ``{"model": NAME}`` (a shipped model, or a model folder, loaded with
            its own weights and referenced by name: the ensemble's folder holds only its weights matrix).
        wiener: the multichannel Wiener post-filter (offline only: a streaming ensemble refuses it).
        n_fft, hop: the post-filter's STFT.
    """

    task = "separation"

    def __init__(self, members: Sequence[Mapping[str, Any]], wiener: bool = False, n_fft: int = 4096,
                 hop: int = 1024):
        from neuraudio.hub import build

        if len(members) < 2:
            raise ValueError("an ensemble needs at least two separators.")
        from neuraudio.hub import load

        models = [load(m["model"]) if "model" in m else build(m["class"], dict(m["kwargs"]), f"ensemble member {i}")
                  for i, m in enumerate(members)]
        self_referenced = [i for i, m in enumerate(members) if "model" in m]
        first = models[0]
        for i, model in enumerate(models[1:], start=1):
            if model.sample_rate != first.sample_rate or not set(model.stems or ()) & set(first.stems or ()) or \
                    model.input_channels() != first.input_channels():
                raise ValueError(f"ensemble member {i} ({type(model).__name__}) differs from member 0 in sample rate "
                                 "or inputs, or shares none of its stems; members must separate stems of the same "
                                 "input.")
        if not first.stems:
            raise ValueError(f"{type(first).__name__} has no stems; an ensemble combines separators.")
        super().__init__(first.sample_rate, math.lcm(*(m.hop for m in models)))
        self.members = torch.nn.ModuleList(models)
        # members loaded by name keep their own weights out of the ensemble's state (and folder)
        self._referenced = tuple(f"members.{i}." for i in self_referenced)
        self._register_state_dict_hook(Ensemble._drop_referenced)
        self._register_load_state_dict_pre_hook(self._fill_referenced)
        self.stems, self.inputs = tuple(first.stems), first.inputs
        self.in_channels, self.out_channels = first.in_channels, first.out_channels
        # member stem order -> ours (-1: the member lacks that stem and contributes silence with weight 0)
        self.order = [[list(m.stems).index(s) if s in m.stems else -1 for s in self.stems] for m in models]
        self.register_buffer("present", torch.tensor([[i >= 0 for i in order] for order in self.order]),
                             persistent=False)
        self.register_buffer("pick", torch.tensor(self.order).clamp_min(0), persistent=False)  # index per member
        count = self.present.sum(0, keepdim=True).clamp_min(1)
        self.register_buffer("weights", self.present.float() / count)
        self.wiener = bool(wiener)
        self.transform = STFT(n_fft, hop, center=True, pad_mode="constant") if wiener else None

    @staticmethod
    def _drop_referenced(module, state: dict, prefix: str, local_metadata) -> None:
        if module._referenced:
            for key in [k for k in state if k[len(prefix):].startswith(module._referenced)]:
                del state[key]

    def _fill_referenced(self, state: dict, prefix: str, local_metadata, strict, missing, unexpected, errors) -> None:
        if not self._referenced:
            return
        for name, value in torch.nn.Module.state_dict(self.members, prefix=prefix + "members.", keep_vars=True).items():
            if name[len(prefix):].startswith(self._referenced) and name not in state:
                state[name] = value.detach()

    def in_order(self, y: torch.Tensor, k: int) -> torch.Tensor:
        """Member ``k``'s ``(..., its stems, C, T)`` in this ensemble's stem order, silence where it lacks one."""
        picked = y.index_select(-3, self.pick[k])
        return picked if min(self.order[k]) >= 0 else picked * self.present[k].view(-1, 1, 1).to(picked.dtype)

    @property
    def step_latency(self) -> int:
        return max(m.step_latency for m in self.members)

    def _combine(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Member outputs ``(..., stems, C, T)`` (already aligned) -> ``(..., stems, C, T)``."""
        stacked = torch.stack([self.in_order(y, k) for k, y in enumerate(outputs)])  # (K, ..., S, C, T)
        w = self.weights.to(stacked.dtype).reshape(len(self.members), *([1] * (stacked.ndim - 4)), len(self.stems), 1, 1)
        return (w * stacked).sum(0)

    def forward(self, x, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        latency = self.step_latency
        outputs = []
        for member in self.members:
            y = member(x, {})
            delay = latency - member.step_latency  # delay the quicker members to the slowest
            outputs.append(torch.nn.functional.pad(y, (delay, 0))[..., : y.shape[-1]] if delay else y)
        out = self._combine(outputs)
        if self.wiener:
            mixture = x if torch.is_tensor(x) else x[0]
            delayed = torch.nn.functional.pad(mixture, (latency, 0))[..., : mixture.shape[-1]]
            out = self.post_filter(delayed, out)
        return out

    def init_state(self, channels: int, max_samples: int, device) -> dict:
        if self.wiener:
            raise ValueError("the Wiener post-filter needs the whole song; stream an ensemble built with wiener=False.")
        states = [m.init_state(channels, max_samples, device) for m in self.members]
        chans = self.output_channels(channels)
        delays = [torch.zeros(len(m.stems), chans, self.step_latency - m.step_latency, device=device)
                  for m in self.members]
        return {"members": states, "delays": delays}

    def step(self, x, state: dict, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        outputs = []
        for i, member in enumerate(self.members):
            y = member.step(x, state["members"][i], {})
            if state["delays"][i].shape[-1]:
                joined = torch.cat([state["delays"][i], y], dim=-1)
                y, state["delays"][i] = joined[..., : y.shape[-1]], joined[..., y.shape[-1]:]
            outputs.append(y)
        return self._combine(outputs)

    # ---- fitting -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, songs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Least-squares weights per stem from ``(mixture (C, T), stems (S, C, T))`` pairs, stems in this ensemble's
        order; returns and keeps them ``(members, stems)``."""
        return self.fit_outputs(([self.in_order(m.process(mixture), k) for k, m in enumerate(self.members)], stems)
                                for mixture, stems in songs)

    @torch.no_grad()
    def fit_outputs(self, items: Iterable[tuple[list[torch.Tensor], torch.Tensor]]) -> torch.Tensor:
        """:meth:`fit` from the members' estimates already computed: ``([y_k (S, C, T) in this ensemble's order
        (:meth:`in_order`), ...], stems (S, C, T))`` pairs; returns and keeps the weights."""
        k, s = len(self.members), len(self.stems)
        gram, cross = torch.zeros(s, k, k, dtype=torch.float64), torch.zeros(s, k, dtype=torch.float64)
        for outputs, stems in items:
            flat = torch.stack([y.double().reshape(s, -1) for y in outputs], dim=1)  # (S, K, samples)
            gram += flat @ flat.transpose(1, 2)
            cross += (flat @ stems.double().reshape(s, -1, 1))[..., 0]
        weights = torch.zeros(len(self.members), len(self.stems))
        for j in range(len(self.stems)):
            have = self.present[:, j].nonzero()[:, 0]
            g, c = gram[j][have][:, have], cross[j][have]
            ridge = 1e-6 * g.diagonal().mean().clamp_min(1e-12) * torch.eye(len(have), dtype=torch.float64)
            weights[have, j] = torch.linalg.solve(g + ridge, c).float()
        self.weights = weights.contiguous()
        return self.weights

    # ---- the post-filter -----------------------------------------------------------------------------------------
    def post_filter(self, mixture: torch.Tensor, stems: torch.Tensor) -> torch.Tensor:
        """One multichannel Wiener iteration: ``mixture`` ``(..., C, T)``, ``stems`` ``(..., S, C, T)`` ->
        ``(..., S, C, T)`` that sum to the mixture."""
        length = mixture.shape[-1]
        X = self.transform(mixture)  # (..., C, F, N)
        Y = self.transform(stems)  # (..., S, C, F, N)
        eps = 1e-10
        power = (Y.real.square() + Y.imag.square()).mean(-3)  # (..., S, F, N): each stem's power per bin
        # spatial covariance per stem and bin, normalised by its power: R[f] = sum_n y y^H / sum_n v
        yy = torch.einsum("...cfn,...dfn->...fncd", Y, Y.conj())  # (..., S, F, N, C, C)
        R = yy.sum(-3) / (power.sum(-1)[..., None, None] + eps)  # (..., S, F, C, C)
        cov = power[..., None, None] * R.unsqueeze(-3)  # (..., S, F, N, C, C)
        total = cov.sum(-5) + eps * torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        x = X.movedim(-3, -1)[..., None]  # (..., F, N, C, 1)
        solved = torch.linalg.solve(total, x)  # (..., F, N, C, 1)
        out = (cov @ solved.unsqueeze(-5))[..., 0]  # (..., S, F, N, C)
        return self.transform.inverse(out.movedim(-1, -3), length=length)
