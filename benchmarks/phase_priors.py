"""Classical phase estimates for a vocoder, scored on real speech with the mel's pseudo-inverse amplitude
(16 kHz, 80-band slaney log mel, n_fft 512, hop 128, centred frames): what each prior is worth before a network
refines it, and the ceiling (the true phase).

    python benchmarks/phase_priors.py --speech ../shared/data/speech/librispeech [--every 20 --count 12 --seconds 6]

Files: every ``--every``-th of the sorted ``*/*.flac`` under ``--speech``, ``--count`` of them, their first
``--seconds``. WB-PESQ of each resynthesis against the file, averaged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import neuraudio
from neuraudio import metrics
from neuraudio.stream.mel import MelSpectrogram
from neuraudio.stream.stft import STFT, make_window
from neuraudio.vocoding.griffin_lim import mel_to_magnitude
from neuraudio.vocoding.phase_prior import griffin_lim_from, phase_vocoder_prior, rtisi_prior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech", required=True)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    files = sorted(Path(args.speech).glob("*/*.flac"))[:: args.every][: args.count]
    mel = MelSpectrogram(16000, 512, 128, 80, 0.0, 8000.0, center=True)
    transform = STFT(512, 128, center=True)
    inverse = torch.linalg.pinv(mel.filters.double()).float()
    window = make_window("hann", 512)
    scores: dict[str, list[float]] = {}
    for path in files:
        x = neuraudio.read_audio(path, sample_rate=16000, channels=1)[0][0, : int(args.seconds * 16000)]
        magnitude = mel_to_magnitude(mel(x), inverse)
        zeros = torch.zeros_like(magnitude)
        pv = phase_vocoder_prior(magnitude, 512, 128)
        cases = {
            "true phase": transform(x).angle(), "zero phase": zeros, "phase vocoder (PV)": pv,
            "Griffin-Lim 32": griffin_lim_from(magnitude, zeros, transform, 32, length=x.numel()),
            "PV + Griffin-Lim 32": griffin_lim_from(magnitude, pv, transform, 32, length=x.numel()),
            "Griffin-Lim 100": griffin_lim_from(magnitude, zeros, transform, 100, length=x.numel()),
            "PV + Griffin-Lim 100": griffin_lim_from(magnitude, pv, transform, 100, length=x.numel()),
            "RTISI 4 (causal)": rtisi_prior(magnitude, window, 128, 4),
            "RTISI 8 (causal)": rtisi_prior(magnitude, window, 128, 8),
            "PV + RTISI 4 (causal)": rtisi_prior(magnitude, window, 128, 4, init=pv),
        }
        for name, phase in cases.items():
            y = transform.inverse(torch.polar(magnitude, phase.float()), length=x.numel())
            scores.setdefault(name, []).append(metrics.pesq(y, x, 16000))
    print(f"{len(files)} files from {args.speech}, first {args.seconds:g} s, pseudo-inverse amplitude")
    for name, values in scores.items():
        print(f"{name:24s} WB-PESQ {sum(values) / len(values):.3f}")


if __name__ == "__main__":
    main()
