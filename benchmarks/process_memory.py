"""Peak memory and time of ``model.process`` over a long signal, in eval mode (inference: no autograd graph) and
in training mode (autograd records the call, as every call did before ``process`` checked the mode), each in a fresh
process so the peaks do not mix:

    python benchmarks/process_memory.py --model klon-centaur --seconds 120
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import resource, sys, time, torch, neuraudio
from neuraudio.examples import noisy_melody
torch.set_num_threads(1)
model = neuraudio.load(sys.argv[1])
if sys.argv[3] == "train":
    model.train()
x = 0.3 * noisy_melody(float(sys.argv[2]), model.sample_rate)
started = time.perf_counter()
y = model.process(x)
elapsed = time.perf_counter() - started
print(f"{sys.argv[3]:5s} mode: {elapsed:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB, "
      f"output keeps a graph: {y.requires_grad}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="klon-centaur")
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    print(f"{args.model}: process() over {args.seconds:g} s of audio, one thread")
    for mode in ("eval", "train"):
        out = subprocess.run([sys.executable, "-c", CHILD, args.model, str(args.seconds), mode], capture_output=True,
                             text=True)
        print(out.stdout.strip() or out.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
