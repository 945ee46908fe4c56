"""Speech enhancers side by side on real speech mixed with real noise at fixed SNRs: WB-PESQ, STOI and SI-SDR of the
noisy input and of each model's output, and each model's real-time factor on one thread.

Utterance i (sorted by path) is mixed with noise file i mod N at a seeded random offset, at each SNR (noise power
over the whole utterance). With the layout of ``recipes/enhancement/prepare.py`` the speech is the 25 held-out
speakers and the noise the held-out end of every noise file: mixtures no model trained on. PESQ and STOI need the
[eval] extra.

    python benchmarks/enhancement.py quality denoise-mmse denoise-16k denoise-stream-16k prior:denoise-16k \\
        prior:denoise-stream-16k --speech data/enhance/val/clean --noise data/enhance/val/noise --snr 0 5 10 15
    python benchmarks/enhancement.py quality denoise-16k denoise-stream-16k --speech data/enhance/val/clean \\
        --noise data/enhance/val/noise --by-noise        (and WB-PESQ per noise: which noises a model fails on)
    python benchmarks/enhancement.py phase denoise-16k --speech data/enhance/val/clean --noise data/enhance/val/noise
    python benchmarks/enhancement.py gains denoise-mmse denoise-16k denoise-stream-16k --speech data/enhance/val/clean \\
        --noise data/enhance/val/noise        (over- or under-suppression: the gain in speech- and noise-dominant bins)
    python benchmarks/enhancement.py quality denoise-stream-16k ideal@320/160 denoise-16k ideal@512/128 \\
        --speech data/enhance/val/clean --noise data/enhance/val/noise   (ideal@N/H: the ideal ratio mask, a bound)
    python benchmarks/enhancement.py exponent denoise-stream-16k --speech data/enhance/val/clean \\
        --noise data/enhance/val/noise --seed 1 --exponents 0.8 0.9 1 1.15 1.3   (would more or less suppression help?)
    python benchmarks/enhancement.py pictures OUT.png denoise-mmse denoise-16k denoise-stream-16k \\
        --speech data/enhance/val/clean --noise data/enhance/val/noise --index 0 --snr 5
"""

from __future__ import annotations

import argparse
import time

import torch

import neuraudio
from neuraudio import metrics
from neuraudio.audio import audio_files_under
from neuraudio.stream.stft import STFT


def mixtures(speech_dir, noise_dir, count: int, snrs, seed: int, max_seconds: float | None, rate: int = 16000):
    """Yield ``(index, snr, noisy, clean)`` for the first ``count`` utterances at each SNR."""
    speech = audio_files_under(speech_dir)[:count]
    noises = [neuraudio.read_audio(p, sample_rate=rate, channels=1)[0] for p in audio_files_under(noise_dir)]
    if not speech or not noises:
        raise SystemExit(f"no audio under {speech_dir if not speech else noise_dir}.")
    gen = torch.Generator().manual_seed(seed)
    for i, path in enumerate(speech):
        clean, _ = neuraudio.read_audio(path, sample_rate=rate, channels=1)
        if max_seconds:
            clean = clean[..., : int(max_seconds * rate)]
        noise = noises[i % len(noises)]
        while noise.shape[-1] < clean.shape[-1]:
            noise = torch.cat([noise, noise], dim=-1)
        start = int(torch.randint(0, noise.shape[-1] - clean.shape[-1] + 1, (1,), generator=gen))
        noise = noise[:, start : start + clean.shape[-1]]
        for snr in snrs:
            scale = (clean.pow(2).mean() / (noise.pow(2).mean().clamp_min(1e-12) * 10 ** (snr / 10))).sqrt()
            yield i, snr, clean + noise * scale, clean


class IdealMask:
    """Not a model but a bound: the ideal ratio mask ``min(1, |S| / |X|)`` on a hann STFT of ``n_fft`` / ``hop``
    (centred frames), applied to the noisy spectrum with its phase, the clean speech ``S`` known (``oracle``, set
    before each ``process``). What a magnitude mask on those frames can reach with the noisy phase: the shipped
    denoisers' phase heads rotate it by almost nothing (``phase`` below)."""

    def __init__(self, n_fft: int, hop: int):
        self.transform = STFT(n_fft, hop, center=True)
        self.oracle: torch.Tensor | None = None

    def process(self, noisy: torch.Tensor) -> torch.Tensor:
        x, s = self.transform(noisy), self.transform(self.oracle)
        mask = (s.abs() / x.abs().clamp_min(1e-9)).clamp(max=1.0)
        return self.transform.inverse(x * mask, length=noisy.shape[-1])


def load(name: str):
    """A model by name; ``prior:NAME`` is NAME with its learned heads zeroed: the classical start it refines (the
    learning curve's point at zero hours); ``ideal@N/H``: the ideal ratio mask on an ``N``-point STFT of hop ``H``
    (:class:`IdealMask`, ``quality`` only)."""
    if name.startswith("ideal@"):
        n_fft, hop = (int(v) for v in name[len("ideal@"):].split("/"))
        return IdealMask(n_fft, hop)
    if name.startswith("prior:"):
        model = neuraudio.load(name[len("prior:"):])
        refiners = [r[-1] for r in (model.core.refiner, model.core.mask_refiner) if r is not None]
        with torch.no_grad():
            for head in (model.core.mask, model.core.real, model.core.imag, *refiners):
                head.weight.zero_()
                head.bias.zero_()
        return model
    return neuraudio.load(name)


def scores(estimate: torch.Tensor, clean: torch.Tensor, rate: int) -> tuple[float, float, float]:
    return (metrics.pesq(estimate, clean, rate), metrics.stoi(estimate, clean, rate),
            float(metrics.si_sdr(estimate, clean)))


def snr_means(rows: dict, snrs, names):
    """``rows`` ``{(snr, name): [tuple of figures, ...]}`` -> ``(label, name, means)`` for each SNR, then over all
    of them (label ``mean``), in the order of ``names``."""
    for snr in [*snrs, "all"]:
        for name in names:
            values = [v for (s, n), vs in rows.items() if n == name and (snr == "all" or s == snr) for v in vs]
            mean = [sum(column) / len(values) for column in zip(*values)]
            yield (f"{snr:6.1f}" if snr != "all" else "  mean"), name, mean


def quality(args) -> None:
    torch.set_num_threads(1)
    models = {name: load(name) for name in args.models}
    names = ["noisy", *models]
    rows = {(snr, n): [] for snr in args.snr for n in names}
    compute = {n: 0.0 for n in models}
    seconds = 0.0
    count = 0
    for i, snr, noisy, clean in mixtures(args.speech, args.noise, args.utterances, args.snr, args.seed,
                                         args.max_seconds):
        rows[(snr, "noisy")].append(scores(noisy, clean, 16000))
        for name, model in models.items():
            if isinstance(model, IdealMask):
                model.oracle = clean
            started = time.perf_counter()
            with torch.inference_mode():
                enhanced = model.process(noisy)
            compute[name] += time.perf_counter() - started
            rows[(snr, name)].append(scores(enhanced, clean, 16000))
        seconds += clean.shape[-1] / 16000
        count = max(count, i + 1)
    print(f"{count} utterances of {args.speech} x the noises of {args.noise}, SNRs {args.snr} dB, seed {args.seed}")
    print(f"{'SNR dB':>6}  {'model':24s} {'WB-PESQ':>8} {'STOI':>7} {'SI-SDR':>7}")
    for label, name, mean in snr_means(rows, args.snr, names):
        print(f"{label}  {name:24s} {mean[0]:8.3f} {mean[1]:7.4f} {mean[2]:7.2f}")
    for name in models:
        print(f"real-time factor, {name}: {compute[name] / (seconds * len(args.snr)):.4f} (one thread)")
    if args.by_noise:  # utterance i was mixed with noise i mod N: one utterance per noise, mean over the SNRs
        noises = audio_files_under(args.noise)
        per = {}
        for (snr, name), values in rows.items():
            for i, v in enumerate(values):
                per.setdefault(noises[i % len(noises)].stem, {}).setdefault(name, []).append(v[0])
        mean = lambda values: sum(values) / len(values)  # noqa: E731
        gains = lambda m: {k: mean(v[m]) - mean(v["noisy"]) for k, v in per.items()}  # noqa: E731
        print(f"WB-PESQ per noise (one utterance each, mean over the SNRs), worst first by {names[-1]}'s gain "
              "over the noisy input")
        print(f"{'noise':44s} " + " ".join(f"{n[-18:]:>18s}" for n in names))
        order = gains(names[-1])
        for noise in sorted(per, key=order.get):
            print(f"{noise[:44]:44s} " + " ".join(f"{mean(per[noise][n]):18.3f}" for n in names))


def pictures(args) -> None:
    from plots import spectrograms

    for i, snr, noisy, clean in mixtures(args.speech, args.noise, args.index + 1, [args.snr], args.seed,
                                         args.max_seconds):
        if i == args.index:
            break
    rows = [("clean", clean), (f"noisy ({snr:g} dB SNR)", noisy)]
    for name in args.models:
        with torch.inference_mode():
            rows.append((name, load(name).process(noisy)))
    spectrograms(rows, args.out, 16000)


def phase(args) -> None:
    """How far a magnitude/phase denoiser rotates the noisy phase (``MagPhaseCore``'s ``atan2(b, 1 + a)``, the
    per-bin refiner's part included), over the held-out mixtures at each SNR, and the mean bias of its two phase
    heads."""
    torch.set_num_threads(1)
    for name in args.models:
        model = load(name)
        core = model.core
        rotations = []
        apply = core.apply

        def recording(h, magnitude, phase, gain, features=None):
            out, mask = apply(h, magnitude, phase, gain, features)
            turned = torch.remainder(out.angle() - phase + torch.pi, 2 * torch.pi) - torch.pi
            rotations.append(turned[magnitude > 0].abs().flatten())  # (a bin of zero magnitude has no phase)
            return out, mask

        core.apply = recording
        for _, _, noisy, _ in mixtures(args.speech, args.noise, args.utterances, args.snr, args.seed, args.max_seconds):
            with torch.inference_mode():
                model.process(noisy)
        r = torch.cat(rotations)
        p99 = r[:: max(1, r.numel() // 8_000_000)].quantile(0.99)  # (quantile takes at most 16 M values)
        print(f"{name}: |rotation| over {r.numel()} bins x frames: mean {float(r.mean()):.4f} rad, p99 "
              f"{float(p99):.4f} rad; head biases: real {float(core.real.bias.detach().mean()):.3f}, "
              f"imag {float(core.imag.bias.detach().mean()):.4f}")


def gains(args) -> None:
    """Where a denoiser loses speech and where it lets noise through, whatever its design: the effective gain
    ``|Y| / |X|`` (output over noisy input, on a common 512-sample hann STFT, hop 128, capped at 2) in the bins where
    the speech is 6 dB above the noise (weighted by speech power: how much speech survives) and where the noise is
    6 dB above the speech (weighted by noise power: how much noise passes), beside the ideal ratio mask
    ``min(1, |S| / |X|)`` in the same bins. Bins of speech more than 30 dB below its loudest bin are left out."""
    torch.set_num_threads(1)
    window = torch.hann_window(512)
    spec = lambda x: torch.stft(x.reshape(-1), 512, 128, window=window, return_complex=True)  # noqa: E731
    print(f"{args.speech} x {args.noise}, SNRs {args.snr} dB: effective gain |Y|/|X| weighted by speech power where "
          "speech leads by 6 dB (S-dom) and by noise power where noise leads by 6 dB (N-dom)")
    print(f"{'SNR dB':>6}  {'model':24s} {'S-dom':>7} {'N-dom':>7} {'ideal S-dom':>12} {'ideal N-dom':>12} "
          f"{'S power in S-dom':>17}")
    models = {name: load(name) for name in args.models}
    rows = {}
    for _, snr, noisy, clean in mixtures(args.speech, args.noise, args.utterances, args.snr, args.seed,
                                         args.max_seconds):
        x, s = spec(noisy), spec(clean)
        s_pow, n_pow = s.abs() ** 2, (x - s).abs() ** 2
        active = s_pow.amax() * 1e-3 < s_pow
        speech_dom, noise_dom = active & (s_pow > 4 * n_pow), n_pow > 4 * s_pow
        if not speech_dom.any() or not noise_dom.any():
            continue
        weighted = lambda g, sel, w: float((g[sel] * w[sel]).sum() / w[sel].sum())  # noqa: E731
        ideal = (s.abs() / x.abs().clamp_min(1e-9)).clamp(max=1.0)
        for name, model in models.items():
            with torch.inference_mode():
                y = spec(model.process(noisy))
            gain = (y.abs() / x.abs().clamp_min(1e-9)).clamp(max=2.0)
            rows.setdefault((snr, name), []).append(
                (weighted(gain, speech_dom, s_pow), weighted(gain, noise_dom, n_pow),
                 weighted(ideal, speech_dom, s_pow), weighted(ideal, noise_dom, n_pow),
                 float(s_pow[speech_dom].sum() / s_pow[active].sum())))
    for label, name, mean in snr_means(rows, args.snr, list(models)):
        print(f"{label}  {name:24s} {mean[0]:7.3f} {mean[1]:7.3f} {mean[2]:12.3f} {mean[3]:12.3f} {mean[4]:17.2f}")


def exponent(args) -> None:
    """Whether a magnitude/phase denoiser suppresses too much or too little overall: its effective magnitude gain
    ``g = |Y| / |X|`` raised to each exponent (``g ** p`` where ``g < 1``; above 1 unchanged; the phase untouched),
    scored on the held-out mixtures. Exponents above 1 remove more noise and more speech; the best exponent says
    which way the trained balance is off (1: not at all, for these scores)."""
    torch.set_num_threads(1)
    for name in args.models:
        model = load(name)
        core = model.core
        apply, power = core.apply, {"p": 1.0}

        def raised(h, magnitude, phase, gain, features=None):
            out, mask = apply(h, magnitude, phase, gain, features)
            g = out.abs() / magnitude.clamp_min(1e-8)
            below = g.clamp(max=1.0)
            return out * below.clamp_min(1e-12) ** (power["p"] - 1.0), mask

        core.apply = raised
        rows = {}
        for _, snr, noisy, clean in mixtures(args.speech, args.noise, args.utterances, args.snr, args.seed,
                                             args.max_seconds):
            for p in args.exponents:
                power["p"] = p
                with torch.inference_mode():
                    rows.setdefault((snr, p), []).append(scores(model.process(noisy), clean, 16000))
        print(f"{name}: its gain raised to each exponent; {args.speech} x {args.noise}, SNRs {args.snr} dB, "
              f"seed {args.seed}, {args.utterances} utterances")
        print(f"{'SNR dB':>6}  {'exponent':>8} {'WB-PESQ':>8} {'STOI':>7} {'SI-SDR':>7}")
        for label, p, mean in snr_means(rows, args.snr, args.exponents):
            if label == "  mean":
                print(f"{label}  {p:8.2f} {mean[0]:8.3f} {mean[1]:7.4f} {mean[2]:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("quality", "pictures", "phase", "gains", "exponent"):
        p = sub.add_parser(name)
        p.add_argument("--speech", required=True)
        p.add_argument("--noise", required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--max-seconds", type=float, default=None, help="the first seconds of each utterance")
        if name in ("quality", "phase", "gains", "exponent"):
            p.add_argument("--utterances", type=int, default=25)
            p.add_argument("--snr", type=float, nargs="+", default=[0.0, 5.0, 10.0, 15.0])
            if name == "quality":
                p.add_argument("--by-noise", action="store_true", help="also WB-PESQ per noise file")
            if name == "exponent":
                p.add_argument("--exponents", type=float, nargs="+", default=[0.8, 0.9, 1.0, 1.15, 1.3])
        else:
            p.add_argument("--index", type=int, default=0)
            p.add_argument("--snr", type=float, default=5.0)
            p.add_argument("out")
        p.add_argument("models", nargs="+", help="model names or folders (prior:NAME: NAME's classical start)")
    args = parser.parse_args()
    {"quality": quality, "pictures": pictures, "phase": phase, "gains": gains, "exponent": exponent}[args.command](args)


if __name__ == "__main__":
    main()
