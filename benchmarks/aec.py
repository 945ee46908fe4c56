"""Echo cancellers side by side on `neuraudio data echo` clips (DIR/<clip>/{mic,ref,echo,noise,target}.wav + meta.json).

Figures per model, all on one CPU thread:

* **far-end single talk**, every clip with far-end speech: the canceller on ``echo + noise`` (the clip's microphone
  without its near-end talker), ERLE ``10 log10(sum in^2 / sum out^2)`` from 2 s on (the adaptive filter converges
  first); beside it what removing all echo but no noise would give (a joint noise suppressor can pass it);
* **double talk** (scenario double_talk): the near end's gain, ``20 log10(<out, s> / <s, s>)`` with ``s`` the near-end
  speech (how much of the talker survives; residual echo and noise do not count), the output's level against
  near end + noise, and SI-SDR against the near end;
* **near-end single talk** (scenario near_end_only): WB-PESQ of the output against the microphone (the issue's
  figure: the canceller should pass the talker untouched) and against the clean near end;
* the bulk-delay tracker's last estimate against ``meta.json``'s echo delay moved by the clip's clock drift, and
  (in the header) the echo the adaptive filter removes by itself: its error less the noise against the echo;
* the real-time factor of the whole run.

    python benchmarks/aec.py --data data/echo_test aec-linear aec-16k [--knob suppression=1.0]
    python benchmarks/aec.py --data data/echo_val aec-16k --worst 3       (and the three clips it handles worst)
    python benchmarks/aec.py --data data/echo_test aec-linear aec-16k --pictures dt.png [--clip clip_000003]
    python benchmarks/aec.py --real ../shared/data/echo/aec_challenge aec-linear aec-16k
    python benchmarks/aec.py --data data/echo_val aec-16k aec-16k@echo aec-16k@noise    (one mask at a time)
    python benchmarks/aec.py --data data/echo_test aec-16k ideal@1 ideal@4 ideal@c1 ideal@c2
(``ideal@K``: not a model but a bound, the ideal ratio mask ``min(1, |S| / |E|)`` on the linear stage's error ``E``
with the near end ``S`` known, on aec-16k's frames, averaged over groups of ``K`` bins (aec-16k's heads are computed
on every 4th bin): how much of the near end a magnitude mask on ``E`` must lose in double talk; ``ideal@cB``: the
ideal complex mask ``S / E`` with its magnitude clipped to ``B``; far-end single talk is not scored, the ideal
output being silence.)
(``--pictures``: log spectrograms of one double-talk clip, its first by default, through each model; matplotlib)

    python benchmarks/aec.py --data data/echo_val --masks aec-16k
(``--masks``, dual-mask models: in the double-talk clips from 2 s on, the applied mask's magnitude (echo x noise)
averaged with the near end's power as weight, over the bins where the near end is 6 dB above the rest of the linear
stage's error ``E - S`` (residual echo and noise) and over those where the rest is 6 dB above the near end, beside
the ideal ratio mask's ``min(1, |S| / |E|)``: whether a model loses the near end where it must (bins the echo
dominates) or where it need not.)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import neuraudio
from neuraudio import metrics
from neuraudio.aec.linear import LinearAEC
from neuraudio.stream.stft import istft, stft


def _linear_stage(model):
    """The model's delay tracker and adaptive filter (``aec-linear`` itself, or the linear stage in front of a
    network)."""
    return getattr(model, "linear", model)


def load(spec: str):
    """``MODEL`` or, for a dual-mask model, ``MODEL@echo`` / ``MODEL@noise``: only that mask applied (the other
    held at 1), to see what each mask does."""
    name, _, only = spec.partition("@")
    model = neuraudio.load(name)
    if only:
        index = {"echo": 0, "noise": 1}[only]
        full = model.masks_and_output

        def one_mask(spectra, masks):
            kept = torch.ones_like(masks)
            kept[:, index] = masks[:, index]
            if masks.shape[1] == 4:  # complex masks: the echo mask's rotation goes with it
                kept[:, 2:] = masks[:, 2:] if only == "echo" else 0.0
            return full(spectra, kept)

        model.masks_and_output = one_mask
    return model


def mask_heads(name: str) -> str | None:
    """For a dual-mask model: how far its echo and noise heads' parameters are apart."""
    name = name.partition("@")[0]
    if name == "ideal":
        return None
    model = neuraudio.load(name)
    heads = getattr(getattr(model, "net", None), "heads", None)
    if heads is None:
        return None
    w, b = heads.weight.detach(), heads.bias.detach()
    return (f"{name}: echo and noise heads differ by max |dw| {float((w[0] - w[1]).abs().max()):.2g}, |db| "
            f"{float((b[0] - b[1]).abs()):.2g} (weights up to {float(w.abs().max()):.3g})")


class IdealMask:
    """``ideal@K`` (module docstring): ``process(mic, ref, near)``."""

    sample_rate = 16000

    def __init__(self, group: int, complex_bound: float | None = None):
        self.linear, self.group, self.bound = LinearAEC(), int(group), complex_bound
        self.window = torch.hann_window(320, periodic=True).sqrt()

    def process(self, mic, ref, near):
        e, _ = self.linear.linear_signals(mic[0], ref[0])
        spec, target = stft(torch.stack([e, near[0]]), 320, 160, self.window)
        if self.bound is not None:  # complex: S / E, its magnitude clipped to the bound
            ratio = target / torch.where(spec.abs() > 1e-9, spec, torch.full_like(spec, 1e-9))
            mask = torch.polar(ratio.abs().clamp(max=self.bound), ratio.angle())
            return self._overlap_add(spec * mask, mic.shape[-1])
        mask = (target.abs() / spec.abs().clamp_min(1e-9)).clamp(max=1.0)
        if self.group > 1:  # one value per group of bins, as a model computing masks on every K-th bin
            mask = torch.nn.functional.avg_pool1d(mask.T[None], self.group, self.group, ceil_mode=True)[0]
            mask = mask.T.repeat_interleave(self.group, dim=0)[: spec.shape[0]]
        return self._overlap_add(spec * mask, mic.shape[-1])

    def _overlap_add(self, spec, length: int):
        out = istft(spec, 320, 160, self.window)[160:]  # the frames' overlap-add delays by one hop
        return torch.nn.functional.pad(out, (0, max(0, length - out.numel())))[None, :length]


def evaluate(name: str, data: Path, knobs: dict) -> dict:
    if name.startswith("ideal@"):
        spec = name.partition("@")[2]
        if spec.startswith("c"):
            return evaluate_ideal(IdealMask(1, float(spec[1:])), data)
        return evaluate_ideal(IdealMask(int(spec)), data)
    model = load(name)
    rate = model.sample_rate
    r = {"erle": [], "limit": [], "gain": [], "level": [], "si_sdr": [], "pesq_mic": [], "pesq_clean": [],
         "pesq_in": [], "delay_error": [], "clips": [], "filter_erle": []}
    compute = seconds = 0.0

    def run(mic, ref):
        nonlocal compute, seconds
        start = time.perf_counter()
        out = model.process(mic, ref, **knobs)
        compute += time.perf_counter() - start
        seconds += mic.shape[-1] / rate
        return out

    for folder in sorted(p for p in data.iterdir() if (p / "meta.json").is_file()):
        meta = json.loads((folder / "meta.json").read_text())
        read = {part: neuraudio.read_audio(folder / f"{part}.wav", sample_rate=rate)[0]
                for part in ("mic", "ref", "echo", "noise", "target")}
        if meta["scenario"] == "near_end_only":
            out = run(read["mic"], read["ref"])
            r["pesq_mic"].append(metrics.pesq(out[0], read["mic"][0], rate))
            r["pesq_clean"].append(metrics.pesq(out[0], read["target"][0], rate))
            r["pesq_in"].append(metrics.pesq(read["mic"][0], read["target"][0], rate))
            continue
        far_only = read["echo"] + read["noise"]
        out = run(far_only, read["ref"])
        skip = 2 * rate
        r["erle"].append(float(metrics.erle(far_only[:, skip:], out[:, skip:])))
        r["limit"].append(float(metrics.erle(far_only[:, skip:], read["noise"][:, skip:])))
        r["clips"].append((r["erle"][-1], r["limit"][-1], folder.name, meta))
        linear = _linear_stage(model)
        state = linear.init_state(1, far_only.shape[-1], "cpu")
        e, _ = linear.linear_signals(far_only[0], read["ref"][0], state)
        # the adaptive filter's own echo removal: its error less the noise, against the echo (from 2 s on)
        r["filter_erle"].append(float(metrics.erle(read["echo"][:, skip:], (e[None] - read["noise"])[:, skip:])))
        true_delay = meta["echo_delay_samples"] * (1 + meta["drift_ppm"] * 1e-6) \
            + meta["drift_ppm"] * 1e-6 * far_only.shape[-1]
        if state["tracker"].delay is not None:
            r["delay_error"].append(abs(state["tracker"].delay - true_delay))
        if meta["scenario"] == "double_talk":
            out = run(read["mic"], read["ref"])
            s = read["target"]
            r["gain"].append(float(metrics.near_end_gain(out, s)))
            r["level"].append(float(10 * torch.log10(out.pow(2).sum() / (s + read["noise"]).pow(2).sum())))
            r["si_sdr"].append(float(metrics.si_sdr(out, s)))
    r["rtf"] = compute / seconds
    return r


def evaluate_ideal(ideal: IdealMask, data: Path) -> dict:
    """:func:`evaluate`'s double-talk and near-end figures for the ideal mask (no ERLE, no delay, no time)."""
    nan = float("nan")
    r = {"erle": [nan], "limit": [], "gain": [], "level": [], "si_sdr": [], "pesq_mic": [], "pesq_clean": [],
         "pesq_in": [], "delay_error": [nan], "rtf": nan}
    for folder in sorted(p for p in data.iterdir() if (p / "meta.json").is_file()):
        scenario = json.loads((folder / "meta.json").read_text())["scenario"]
        if scenario == "far_end_only":
            continue
        read = {part: neuraudio.read_audio(folder / f"{part}.wav", sample_rate=16000)[0]
                for part in ("mic", "ref", "noise", "target")}
        out = ideal.process(read["mic"], read["ref"], read["target"])
        if scenario == "near_end_only":
            r["pesq_mic"].append(metrics.pesq(out[0], read["mic"][0], 16000))
            r["pesq_clean"].append(metrics.pesq(out[0], read["target"][0], 16000))
            continue
        s = read["target"]
        r["gain"].append(float(metrics.near_end_gain(out, s)))
        r["level"].append(float(10 * torch.log10(out.pow(2).sum() / (s + read["noise"]).pow(2).sum())))
        r["si_sdr"].append(float(metrics.si_sdr(out, s)))
    return r


def real(args, knobs: dict) -> None:
    """Real recordings without a clean near end: per 10 ms frame, the far end plays where the reference is within
    40 dB of its loudest frame. Where it plays, the output's level against the microphone's is echo removed (and
    whatever the near end lost in double talk); where it is silent, the microphone holds only the near end and the
    noise, and the level change is what the canceller takes from them (a joint noise suppressor lowers it too)."""
    clips = sorted(p for p in Path(args.real).iterdir() if p.is_dir())
    print(f"{args.real}: {len(clips)} recordings; level change output/mic in dB (mean over clips), one CPU thread")
    print(f"{'model':<22}{'far end playing':>17}{'far end silent':>16}{'RTF':>8}")
    for name in args.models:
        model = neuraudio.load(name)
        rate, hop = model.sample_rate, model.sample_rate // 100
        playing, silent = [], []
        compute = seconds = 0.0
        for clip in clips:
            mic, ref = (neuraudio.read_audio(next(clip.glob(f"{part}.*")), sample_rate=rate, channels=1)[0]
                        for part in ("mic", "ref"))
            n = min(mic.shape[-1], ref.shape[-1]) // hop * hop
            mic, ref = mic[:, :n], ref[:, :n]
            start = time.perf_counter()
            out = model.process(mic, ref, **knobs)
            compute, seconds = compute + time.perf_counter() - start, seconds + n / rate
            frame = lambda x: x[0, 2 * rate // hop * hop:].reshape(-1, hop).pow(2).sum(-1)  # noqa: E731 - from 2 s on
            r, m, o = frame(ref), frame(mic), frame(out)
            active = r > r.max() * 1e-4
            playing.append(float(10 * torch.log10(o[active].sum() / m[active].sum())))
            silent.append(float(10 * torch.log10(o[~active].sum() / m[~active].sum())))
        mean = lambda v: sum(v) / len(v)  # noqa: E731
        print(f"{name:<22}{mean(playing):17.1f}{mean(silent):16.1f}{compute / seconds:8.4f}")


def masks(args) -> None:
    """The ``--masks`` table (module docstring)."""
    data = Path(args.data)
    print(f"{data}: double-talk clips; mask magnitude (echo x noise) weighted by the near end's power, in bins where "
          "the near end S is 6 dB above the rest R of the linear stage's error, and where R is 6 dB above S")
    print(f"{'model':<22}{'S-dominant':>11}{'R-dominant':>11}{'ideal S-dom':>13}{'ideal R-dom':>13}"
          f"{'S power in S-dom':>18}{'clips':>7}")
    for name in args.models:
        model = neuraudio.load(name).eval()
        rows = []
        for folder in sorted(p for p in data.iterdir() if (p / "meta.json").is_file()):
            if json.loads((folder / "meta.json").read_text())["scenario"] != "double_talk":
                continue
            read = {k: neuraudio.read_audio(folder / f"{k}.wav", sample_rate=16000)[0][0]
                    for k in ("mic", "ref", "target")}
            with torch.no_grad():
                e, y = model.linear.linear_signals(read["mic"], read["ref"])
                spectra = stft(torch.stack([e, y, read["mic"], read["target"]])[None], 2 * model.hop, model.hop,
                               model.window)
                applied = model.net(model._features(spectra[:, :3]))
            skip = 200  # frames: the first 2 s, while the linear stage converges
            error, near = spectra[0, 0, :, skip:], spectra[0, 3, :, skip:]
            mask = (applied[0, 0] * applied[0, 1])[:, skip:]
            ideal = (near.abs() / error.abs().clamp_min(1e-9)).clamp(max=1.0)
            s_pow, r_pow = near.abs() ** 2, (error - near).abs() ** 2
            active = s_pow > 1e-3 * s_pow.max()
            near_dom, rest_dom = active & (s_pow > 4 * r_pow), active & (r_pow > 4 * s_pow)
            weighted = lambda m, sel: float((m[sel] * s_pow[sel]).sum() / s_pow[sel].sum())  # noqa: E731
            if near_dom.any() and rest_dom.any():
                rows.append((weighted(mask, near_dom), weighted(mask, rest_dom), weighted(ideal, near_dom),
                             weighted(ideal, rest_dom), float(s_pow[near_dom].sum() / s_pow[active].sum())))
        mean = [sum(r[k] for r in rows) / max(1, len(rows)) for k in range(5)]
        print(f"{name:<22}{mean[0]:11.3f}{mean[1]:11.3f}{mean[2]:13.3f}{mean[3]:13.3f}{mean[4]:18.2f}{len(rows):7d}")


def pictures(args, knobs: dict) -> None:
    from plots import spectrograms

    data = Path(args.data)
    clips = [p for p in sorted(data.iterdir()) if (p / "meta.json").is_file()]
    folder = data / args.clip if args.clip else next(
        p for p in clips if json.loads((p / "meta.json").read_text())["scenario"] == "double_talk")
    meta = json.loads((folder / "meta.json").read_text())
    read = {part: neuraudio.read_audio(folder / f"{part}.wav", sample_rate=16000)[0] for part in ("mic", "ref", "target")}
    rows = [("loudspeaker (far end)", read["ref"]),
            (f"microphone: echo {meta['echo_rms_db']:.0f} dBFS, near end {meta['target_rms_db']:.0f} dBFS, noise "
             f"{meta['noise_rms_db']:.0f} dBFS, bulk delay {meta['bulk_delay_samples'] / 16:.0f} ms", read["mic"])]
    for name in args.models:
        out = neuraudio.load(name).process(read["mic"], read["ref"], **knobs)
        rows.append((f"{name}  (SI-SDR against the near end {float(metrics.si_sdr(out, read['target'])):.1f} dB)", out))
    rows.append(("near-end talker alone (the target)", read["target"]))
    spectrograms(rows, args.pictures, 16000, dpi=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["aec-linear"])
    parser.add_argument("--data", help="a `neuraudio data echo` folder (with meta.json per clip)")
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--real", metavar="DIR", help="score real recordings DIR/<clip>/{mic,ref}.* instead (no "
                        "ground truth: level changes where the far end plays and where it is silent)")
    parser.add_argument("--pictures", metavar="PNG", help="draw one double-talk clip instead of scoring")
    parser.add_argument("--clip", help="the clip --pictures draws (default: the first double-talk one)")
    parser.add_argument("--worst", type=int, default=0, metavar="N", help="also list each model's N clips of lowest "
                        "far-end ERLE, with what made them (SER, SNR, room, delay, drift, loudspeaker, noise)")
    parser.add_argument("--masks", action="store_true", help="where dual-mask models lose the near end in double "
                        "talk (module docstring)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    knobs = {k: float(v) for k, v in (pair.split("=") for pair in args.knob)}
    if args.pictures:
        pictures(args, knobs)
        return
    if args.masks:
        if not args.data:
            parser.error("--masks needs --data DIR.")
        masks(args)
        return
    if args.real:
        real(args, knobs)
        return
    if not args.data:
        parser.error("give --data DIR (or --real DIR).")
    mean = lambda values: sum(values) / max(1, len(values))  # noqa: E731
    results = {name: evaluate(name, Path(args.data), knobs) for name in args.models}
    # the header's counts from a model's results (an ideal mask scores no far-end-only clip and no input)
    first = next((r for name, r in results.items() if not name.startswith("ideal@")), None)
    if first is None:
        some = next(iter(results.values()))
        print(f"{args.data}: {len(some['gain'])} clips in double talk, {len(some['pesq_mic'])} near-end only "
              "(bounds only: no far-end single talk scored); one CPU thread")
    else:
        print(f"{args.data}: {len(first['erle'])} clips with far-end speech ({len(first['gain'])} in double talk), "
              f"{len(first['pesq_mic'])} near-end only; knobs {knobs or 'default'}; one CPU thread")
        print(f"  all echo and no noise removed would give ERLE {mean(first['limit']):.1f} dB; "
              f"microphone against clean near end, near-end only: WB-PESQ {mean(first['pesq_in']):.3f}")
        print(f"  the linear stage's adaptive filter by itself removes {mean(first['filter_erle']):.1f} dB of the echo "
              f"(echo only, from 2 s on; min {min(first['filter_erle']):.1f})")
    print(f"{'model':<22}{'ERLE dB':>9}{'min':>7}{'DT gain':>9}{'DT level':>10}{'DT SI-SDR':>11}"
          f"{'NE PESQ/mic':>13}{'NE PESQ/clean':>15}{'delay err':>11}{'RTF':>8}")
    for name, r in results.items():
        print(f"{name:<22}{mean(r['erle']):9.1f}{min(r['erle']):7.1f}{mean(r['gain']):+9.2f}{mean(r['level']):+10.2f}"
              f"{mean(r['si_sdr']):11.1f}{mean(r['pesq_mic']):13.3f}{mean(r['pesq_clean']):15.3f}"
              f"{mean(r['delay_error']):11.1f}{r['rtf']:8.4f}")
    for line in dict.fromkeys(filter(None, (mask_heads(name) for name in results if "@" in name))):
        print(line)
    for name, r in results.items():
        if args.worst and r.get("clips"):
            print(f"{name}: the {args.worst} clips of lowest far-end ERLE (limit: all echo and no noise removed)")
            for erle, limit, clip, m in sorted(r["clips"], key=lambda c: c[0])[: args.worst]:
                room = f"rt60 {m['rt60']:.2f} s" if "rt60" in m else "measured room"
                print(f"  {clip}  ERLE {erle:5.1f} dB (limit {limit:5.1f})  {m['scenario']}, "
                      f"SER {m['ser_db']:+.1f} dB, SNR {m['snr_db']:.1f} dB, echo {m['echo_rms_db']:.0f} dBFS, {room}, "
                      f"delay {m['echo_delay_samples'] * 1000 / m['sample_rate']:.0f} ms, drift {m['drift_ppm']:+.0f} ppm, "
                      f"{m.get('nonlinearity')} "
                      f"{m.get('nonlinearity_amount', 0):.2f}, noise {m['sources']['noise'].split('@')[0]}")


if __name__ == "__main__":
    main()
