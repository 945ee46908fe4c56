"""Generated example signals to try the commands on (no bundled recordings needed)."""

from __future__ import annotations

import math

import torch


def noisy_melody(seconds: float = 6.0, sample_rate: int = 48000, noise_dbfs: float = -50.0, seed: int = 0) -> torch.Tensor:
    """A mono melody of decaying harmonic tones with rests, plus steady white noise at ``noise_dbfs`` RMS.

    Returns float32 ``(1, round(seconds * sample_rate))``; the same seed gives the same samples.
    """
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError("seconds and sample_rate must be positive.")
    gen = torch.Generator().manual_seed(seed)
    n = round(seconds * sample_rate)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    y = torch.zeros(n, dtype=torch.float64)
    note_s = 0.5
    for i in range(int(seconds / note_s)):
        if i % 4 == 3:  # a rest: only noise, for a gate to work on
            continue
        midi = 57 + int(torch.randint(0, 12, (1,), generator=gen))
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        start, stop = round(i * note_s * sample_rate), min(n, round((i + 0.8) * note_s * sample_rate))
        tt = t[: stop - start]
        env = torch.exp(-tt / 0.25) * (1 - torch.exp(-tt / 0.005))
        tone = sum(math.pow(0.5, h) * torch.sin(2 * math.pi * f0 * (h + 1) * tt) for h in range(4))
        y[start:stop] += 0.3 * env * tone
    noise = torch.randn(n, generator=gen, dtype=torch.float64) * 10 ** (noise_dbfs / 20)
    return (y + noise).to(torch.float32)[None]


def exercise_signal(seconds: float = 3.0, sample_rate: int = 48000, seed: int = 0) -> torch.Tensor:
    """A signal that exercises a model across its operating range, for checks such as the engine's precision test.

    In order: plucked harmonic notes (sharp attacks, long decays, 82-660 Hz) at peaks from -45 to 0 dBFS, with
    stretches of exact digital silence between groups; a 10-ms click train; a white-noise burst at -12 dBFS RMS; a
    logarithmic sine sweep 40 Hz - 0.45 * rate at -6 dBFS. Guitar DI and speech reach levels and transients that a
    sine with light noise does not (the field report, issue [1/6]: klon-centaur in bfloat16 passed a sine at ESR 5.7e-5
    and reached 2.2e-3 on real guitar DI).

    Returns float32 ``(1, round(seconds * sample_rate))``; the same seed gives the same samples.
    """
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError("seconds and sample_rate must be positive.")
    gen = torch.Generator().manual_seed(seed)
    n = round(seconds * sample_rate)
    y = torch.zeros(n, dtype=torch.float64)
    notes_end, clicks_end, noise_end = round(0.55 * n), round(0.65 * n), round(0.8 * n)
    note = max(1, round(0.12 * sample_rate))
    peaks_db = torch.linspace(-45.0, 0.0, max(1, notes_end // note), dtype=torch.float64)
    for i, peak_db in enumerate(peaks_db):
        start = i * note
        if i % 6 == 5:  # a gap of exact zeros
            continue
        f0 = 82.4 * 2 ** (float(torch.rand((), generator=gen, dtype=torch.float64)) * 3)
        tt = torch.arange(min(note, notes_end - start), dtype=torch.float64) / sample_rate
        env = torch.exp(-tt / 0.08)
        tone = sum((0.7 ** h) * torch.sin(2 * math.pi * f0 * (h + 1) * tt) for h in range(8))
        tone = env * tone / tone.abs().max().clamp_min(1e-9)
        y[start : start + tt.numel()] = 10 ** (float(peak_db) / 20) * tone
    period = max(2, round(0.01 * sample_rate))
    y[notes_end:clicks_end:period] = 0.9
    y[clicks_end:noise_end] = 10 ** (-12 / 20) * torch.randn(noise_end - clicks_end, generator=gen, dtype=torch.float64)
    tt = torch.arange(n - noise_end, dtype=torch.float64) / sample_rate
    span = max(tt[-1].item(), 1e-9) if tt.numel() else 1.0
    f1, f2 = 40.0, 0.45 * sample_rate
    phase = 2 * math.pi * f1 * span / math.log(f2 / f1) * (torch.exp(tt / span * math.log(f2 / f1)) - 1)
    y[noise_end:] = 0.5 * torch.sin(phase)
    return y.to(torch.float32)[None]


def toy_song(seconds: float = 8.0, sample_rate: int = 44100, seed: int = 0, vocals: bool = True) -> dict[str, torch.Tensor]:
    """A synthetic stereo song at 120 beats per minute in four stems, to try separators on (no recordings needed):

    * ``drums``: a kick (a 150 -> 50 Hz sweep) on beats 1 and 3, a snare (band-passed noise and a 190 Hz body) on 2
      and 4, closed hi-hats (high-passed noise) on every eighth, centred;
    * ``bass``: one sawtooth note a beat, 41-110 Hz, low-passed, centred;
    * ``other``: a pad of three detuned sawtooth chords a bar (slow attack), 200-1000 Hz, panned left and right;
    * ``vocals`` (omitted with ``vocals=False``: silent): a voice-like tone, a glottal-pulse-like harmonic series at
      200-400 Hz with 5.5 Hz vibrato under two moving formants, one phrase per bar with a gap, centred.

    Returns ``{stem: float32 (2, round(seconds * sample_rate))}``; the mixture is their sum (peaks near -6 dBFS); the
    same seed gives the same samples.
    """
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError("seconds and sample_rate must be positive.")
    gen = torch.Generator().manual_seed(seed)
    n, sr = round(seconds * sample_rate), sample_rate
    t = torch.arange(n, dtype=torch.float64) / sr
    beat = sr // 2
    rand = lambda *shape: torch.rand(*shape, generator=gen, dtype=torch.float64)  # noqa: E731

    def one_pole(x: torch.Tensor, cutoff: float, high: bool = False) -> torch.Tensor:
        a = math.exp(-2 * math.pi * cutoff / sr)  # y[k] = (1-a) x[k] + a y[k-1], as an FIR to 1e-6, by FFT
        taps = max(1, int(math.log(1e-6) / math.log(a)) + 1)
        h = (1 - a) * a ** torch.arange(taps, dtype=torch.float64)
        size = x.shape[-1] + taps
        low = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(h, size), size)[: x.shape[-1]]
        return x - low if high else low

    def saw(f: torch.Tensor) -> torch.Tensor:
        phase = torch.cumsum(f / sr, 0)
        return 2 * (phase - torch.floor(phase + 0.5))

    drums, bass, other, voice = (torch.zeros(n, dtype=torch.float64) for _ in range(4))
    for b, start in enumerate(range(0, n, beat)):
        seg = torch.arange(min(2 * beat, n - start), dtype=torch.float64) / sr
        if b % 2 == 0:
            f = 50 + 100 * torch.exp(-seg / 0.03)
            drums[start : start + seg.numel()] += 0.8 * torch.sin(2 * math.pi * torch.cumsum(f / sr, 0)) * torch.exp(-seg / 0.15)
        else:
            burst = torch.randn(seg.numel(), generator=gen, dtype=torch.float64)
            snare = one_pole(one_pole(burst, 5000.0), 1000.0, high=True) * torch.exp(-seg / 0.08)
            drums[start : start + seg.numel()] += 0.35 * snare + 0.3 * torch.sin(2 * math.pi * 190 * seg) * torch.exp(-seg / 0.05)
        for half in (0, beat // 2):
            s = start + half
            if s >= n:
                continue
            seg8 = torch.arange(min(beat // 2, n - s), dtype=torch.float64) / sr
            hat = one_pole(torch.randn(seg8.numel(), generator=gen, dtype=torch.float64), 7000.0, high=True)
            drums[s : s + seg8.numel()] += 0.1 * hat * torch.exp(-seg8 / 0.02)
        note = seg[: min(beat, seg.numel())]
        f0 = 41.2 * 2 ** (int(torch.randint(0, 17, (1,), generator=gen)) / 12)
        env = (1 - torch.exp(-note / 0.005)) * torch.exp(-note / 0.4)
        bass[start : start + note.numel()] += 0.5 * env * saw(torch.full_like(note, f0))
    bass = one_pole(one_pole(bass, 400.0), 400.0)
    left, right = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for start in range(0, n, 4 * beat):
        seg = torch.arange(min(4 * beat, n - start), dtype=torch.float64) / sr
        env = (1 - torch.exp(-seg / 0.3)) * torch.exp(-seg / 3.0)
        root = 196.0 * 2 ** (int(torch.randint(0, 7, (1,), generator=gen)) / 12)
        for i, ratio in enumerate((1.0, 1.26, 1.5)):
            tone = sum(saw(torch.full_like(seg, root * ratio * (1 + d))) for d in (-0.003, 0.003))
            (left if i % 2 == 0 else right)[start : start + seg.numel()] += 0.16 * env * tone
            (right if i % 2 == 0 else left)[start : start + seg.numel()] += 0.06 * env * tone
    left, right = one_pole(left, 2500.0), one_pole(right, 2500.0)
    if vocals:
        for start in range(0, n, 4 * beat):
            length = min(3 * beat, n - start)
            seg = torch.arange(length, dtype=torch.float64) / sr
            f0 = (200 + 200 * rand(1)) * (1 + 0.02 * torch.sin(2 * math.pi * 5.5 * seg))
            phase = torch.cumsum(f0 / sr, 0)
            # two formants that glide, as if vowels changed: each harmonic's gain from its distance to them
            f1 = 500 + 300 * torch.sin(2 * math.pi * (0.7 + rand(1)) * seg)
            f2 = 1500 + 700 * torch.sin(2 * math.pi * (0.5 + rand(1)) * seg + 1.0)
            tone = torch.zeros(length, dtype=torch.float64)
            for h in range(1, 30):
                fh = h * f0
                gain = torch.exp(-((fh - f1) / 150) ** 2) + 0.5 * torch.exp(-((fh - f2) / 250) ** 2) + 0.02 / h
                tone += gain * torch.sin(2 * math.pi * h * phase)
            env = (1 - torch.exp(-seg / 0.05)) * (1 - torch.exp(-(seg[-1] - seg) / 0.05))
            voice[start : start + length] += 0.18 * env * tone
    stems = {"drums": torch.stack([drums, drums]), "bass": torch.stack([bass, bass]),
             "other": torch.stack([left, right]), "vocals": torch.stack([voice, voice])}
    peak = float(sum(stems.values()).abs().max())
    return {k: (v * (0.5 / max(peak, 1e-9))).to(torch.float32) for k, v in stems.items()}
