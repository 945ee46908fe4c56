"""A speech denoiser on real speech mixed with real noise at fixed SNRs: WB-PESQ and SI-SDR before and after.

Utterance i (sorted by path) is mixed with noise file i mod N at a seeded random offset, at each SNR (noise power
over the whole utterance); PESQ needs the [eval] extra.

    python benchmarks/denoise.py --model denoise-mmse --speech ../shared/data/speech/librispeech \\
        --noise ../shared/data/noise --utterances 40 --snr 0 5 10
"""

from __future__ import annotations

import argparse
import time

import torch

import neuraudio
from neuraudio import metrics
from neuraudio.audio import audio_files_under


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="denoise-mmse")
    parser.add_argument("--speech", required=True)
    parser.add_argument("--noise", required=True)
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--snr", type=float, nargs="+", default=[0.0, 5.0, 10.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = neuraudio.load(args.model)
    rate = model.sample_rate
    speech = audio_files_under(args.speech)[: args.utterances]
    noises = [neuraudio.read_audio(p, sample_rate=rate, channels=1)[0] for p in audio_files_under(args.noise)]
    gen = torch.Generator().manual_seed(args.seed)
    rows = {snr: [] for snr in args.snr}
    compute, audio_seconds = 0.0, 0.0
    for i, path in enumerate(speech):
        clean, _ = neuraudio.read_audio(path, sample_rate=rate, channels=1)
        noise = noises[i % len(noises)]
        while noise.shape[-1] < clean.shape[-1]:
            noise = torch.cat([noise, noise], dim=-1)
        start = int(torch.randint(0, noise.shape[-1] - clean.shape[-1] + 1, (1,), generator=gen))
        noise = noise[:, start : start + clean.shape[-1]]
        for snr in args.snr:
            noisy = clean + noise * (clean.pow(2).mean() / (noise.pow(2).mean().clamp_min(1e-12) * 10 ** (snr / 10))).sqrt()
            started = time.perf_counter()
            enhanced = model.process(noisy)
            compute += time.perf_counter() - started
            audio_seconds += clean.shape[-1] / rate
            rows[snr].append((metrics.pesq(noisy, clean, rate), metrics.pesq(enhanced, clean, rate),
                              float(metrics.si_sdr(noisy, clean)), float(metrics.si_sdr(enhanced, clean))))
    print(f"{args.model}: {len(speech)} utterances of {args.speech} with the {len(noises)} noise files of {args.noise}")
    print(f"{'SNR dB':>7} {'PESQ in':>8} {'PESQ out':>9} {'SI-SDR in':>10} {'SI-SDR out':>11}")
    for snr, values in rows.items():
        mean = [sum(v[k] for v in values) / len(values) for k in range(4)]
        print(f"{snr:7.1f} {mean[0]:8.3f} {mean[1]:9.3f} {mean[2]:10.2f} {mean[3]:11.2f}")
    print(f"real-time factor {compute / audio_seconds:.4f} (one thread)")


if __name__ == "__main__":
    main()
