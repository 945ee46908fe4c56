"""Stacked log spectrograms of several signals, one row each: the pictures of the model cards (needs matplotlib).

    from plots import spectrograms          # benchmarks/ is on the path of a script run from it
    spectrograms([("noisy", x), ("denoised", y)], "card.png", rate=16000)
"""

from __future__ import annotations

import torch


def spectrograms(rows, out, rate: int = 16000, n_fft: int = 512, hop: int = 128, dpi: int = 80, height: float = 2.2,
                 cmap: str | None = None, range_db: float = 80.0, shared_scale: bool = False) -> None:
    """``rows``: ``(title, audio (1, time))`` pairs at ``rate``; writes a PNG to ``out``. Each row's colours span
    ``range_db`` below its own peak, or with ``shared_scale`` below the loudest row's peak (a quiet row looks
    quiet: how separated stems compare with their mixture)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = torch.hann_window(n_fft)
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, height * len(rows)), sharex=True, squeeze=False)
    dbs = [20 * torch.log10(torch.stft(audio.reshape(-1).float(), n_fft, hop, window=window, return_complex=True)
                            .abs().clamp_min(1e-5)) for _, audio in rows]
    top = max(float(db.max()) for db in dbs)
    for ax, (title, audio), db in zip(axes[:, 0], rows, dbs):
        peak = top if shared_scale else float(db.max())
        ax.imshow(db.numpy(), origin="lower", aspect="auto", vmin=peak - range_db, vmax=peak,
                  extent=(0, audio.shape[-1] / rate, 0, rate / 2000), cmap=cmap)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    print(f"wrote {out}")
