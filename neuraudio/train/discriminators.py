"""Discriminators for GAN-trained vocoders: multi-period (HiFi-GAN, Kong et al., 2020) and multi-resolution
spectrogram (UnivNet, Jang et al., 2021), at widths a CPU can train (``width`` scales every layer).

Each discriminator returns ``(logits, features)`` per sub-discriminator: the logits for the least-squares GAN
losses, the feature maps for feature matching. Input audio is ``(batch, 1, time)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _read(convs: nn.ModuleList, post: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A 2-D convolution stack with leaky ReLUs, then the output layer: ``(logits, every layer's output)``."""
    features = []
    for conv in convs:
        h = nn.functional.leaky_relu(conv(h), 0.1)
        features.append(h)
    h = post(h)
    features.append(h)
    return h.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """The waveform folded into ``(time / period, period)`` and read by 2-D convolutions along time."""

    def __init__(self, period: int, width: int = 16):
        super().__init__()
        self.period = period
        channels = [1, width, 2 * width, 4 * width, 8 * width]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0))) for a, b in zip(channels, channels[1:]))
        self.convs.append(weight_norm(nn.Conv2d(channels[-1], channels[-1], (5, 1), padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pad = (-x.shape[-1]) % self.period
        x = nn.functional.pad(x, (0, pad), mode="reflect" if pad < x.shape[-1] else "constant")
        return _read(self.convs, self.post, x.reshape(x.shape[0], 1, -1, self.period))


class ResolutionDiscriminator(nn.Module):
    """A compressed magnitude spectrogram at one STFT resolution, read by 2-D convolutions."""

    def __init__(self, n_fft: int, hop: int, width: int = 16):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, width, (3, 9), padding=(1, 4))),
            weight_norm(nn.Conv2d(width, width, (3, 9), (1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(width, width, (3, 9), (1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(width, width, (3, 9), (1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(width, width, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x.squeeze(1), self.n_fft, self.hop, window=self.window, return_complex=True)
        compressed = spec.abs().clamp_min(1e-7).pow(0.3).unsqueeze(1)  # (batch, 1, freq, frames)
        return _read(self.convs, self.post, compressed)


class Discriminators(nn.Module):
    """All sub-discriminators: periods ``(2, 3, 5, 7, 11)`` and resolutions ``((512, 128), (1024, 256),
    (256, 64))`` by default."""

    def __init__(self, periods=(2, 3, 5, 7, 11), resolutions=((512, 128), (1024, 256), (256, 64)),
                 width: int = 16):
        super().__init__()
        self.parts = nn.ModuleList([*(PeriodDiscriminator(p, width) for p in periods),
                                    *(ResolutionDiscriminator(n, h, width) for n, h in resolutions)])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [part(x) for part in self.parts]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Least squares: real toward 1, generated toward 0, summed over sub-discriminators."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for (r, _), (f, _) in zip(real, fake))


def generator_loss(fake: list) -> torch.Tensor:
    return sum(torch.mean((1 - f) ** 2) for f, _ in fake)


def feature_matching(real: list, fake: list) -> torch.Tensor:
    """Mean L1 between the discriminators' feature maps of real and generated audio."""
    total = 0.0
    for (_, real_features), (_, fake_features) in zip(real, fake):
        for r, f in zip(real_features, fake_features):
            total = total + torch.mean(torch.abs(r.detach() - f))
    return total
