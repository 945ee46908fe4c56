"""An echo canceller on `neuraudio data echo` clips (DIR/<clip>/{mic,ref,echo,noise,target}.wav + meta.json).

For every clip with far-end speech, three figures:
* ERLE in far-end single talk after 2 s: the canceller on ``echo + noise`` (the clip's microphone without its
  near-end talker), ``10 log10(sum in^2 / sum out^2)`` from 2 s on; beside it the limit a canceller that removes
  all the echo but not the noise would reach;
* in double talk (clips whose scenario is double_talk): the near end's level change, ``10 log10(sum out^2 / sum
  (target + noise)^2)`` over the clip, and the SI-SDR of the output against the target;
* the bulk-delay tracker's last estimate against ``meta.json``'s echo delay moved by the clip's clock drift.
and the real-time factor of the whole run on one thread.

    python benchmarks/aec.py --data /tmp/echo30 [--knob suppression=1.0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import neuraudio
from neuraudio import metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="aec-linear")
    parser.add_argument("--data", required=True)
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(1)
    knobs = {k: float(v) for k, v in (pair.split("=") for pair in args.knob)}
    model = neuraudio.load(args.model)
    rate = model.sample_rate
    erle, limits, level, si_sdr, delay_error = [], [], [], [], []
    compute = seconds = 0.0
    for folder in sorted(p for p in Path(args.data).iterdir() if (p / "meta.json").is_file()):
        meta = json.loads((folder / "meta.json").read_text())
        if meta["scenario"] == "near_end_only":
            continue
        read = {name: neuraudio.read_audio(folder / f"{name}.wav", sample_rate=rate)[0]
                for name in ("mic", "ref", "echo", "noise", "target")}
        far_only = read["echo"] + read["noise"]
        start = time.perf_counter()
        out = model.process(far_only, read["ref"], **knobs)
        compute += time.perf_counter() - start
        seconds += far_only.shape[-1] / rate
        skip = 2 * rate
        erle.append(float(10 * torch.log10(far_only[:, skip:].pow(2).sum() / out[:, skip:].pow(2).sum())))
        limits.append(float(10 * torch.log10(far_only[:, skip:].pow(2).sum() / read["noise"][:, skip:].pow(2).sum())))
        stream_state = model.init_state(1, far_only.shape[-1], "cpu")
        model._run(far_only, read["ref"], stream_state, {n: torch.full((far_only.shape[-1],), float(knobs.get(n, s.default)))
                                                        for n, s in model.knobs.items()})
        true_delay = meta["echo_delay_samples"] * (1 + meta["drift_ppm"] * 1e-6) + meta["drift_ppm"] * 1e-6 * far_only.shape[-1]
        if stream_state["tracker"].delay is not None:
            delay_error.append(abs(stream_state["tracker"].delay - true_delay))
        if meta["scenario"] == "double_talk":
            out = model.process(read["mic"], read["ref"], **knobs)
            near = read["target"] + read["noise"]
            level.append(float(10 * torch.log10(out.pow(2).sum() / near.pow(2).sum())))
            si_sdr.append(float(metrics.si_sdr(out, read["target"])))
    mean = lambda values: sum(values) / max(1, len(values))  # noqa: E731
    print(f"{args.model} {knobs or ''} on {args.data}: {len(erle)} clips with far-end speech, {len(level)} in double talk")
    print(f"  far-end single talk, ERLE after 2 s: mean {mean(erle):.1f} dB (min {min(erle):.1f}, max {max(erle):.1f}); "
          f"removing all echo and no noise would give {mean(limits):.1f} dB")
    print(f"  double talk: output level against near end + noise {mean(level):+.2f} dB "
          f"(per clip {min(level):+.1f}..{max(level):+.1f}), SI-SDR against the near end {mean(si_sdr):.1f} dB")
    print(f"  bulk delay at the end of each clip: mean error {mean(delay_error):.1f} samples (max {max(delay_error):.1f})")
    print(f"  real-time factor {compute / seconds:.4f} (one thread)")


if __name__ == "__main__":
    main()
