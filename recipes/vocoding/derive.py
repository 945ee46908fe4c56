"""Derive a model folder from another with changed constructor arguments, keeping every weight the new model has
(weights the new model drops, e.g. the amplitude head with ``refine_amplitude=false``, are left out):

    python recipes/vocoding/derive.py MODEL_DIR OUT_DIR key=value ...     # values parsed as JSON

How a snapshot trained with one setting starts a run with another (``--model.init_args.init_from OUT_DIR``).
"""

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from neuraudio import hub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("changes", nargs="*", metavar="key=value")
    args = parser.parse_args()
    config = json.loads((args.model / "config.json").read_text())
    weights = load_file(args.model / "model.safetensors")  # read as tensors: the source's class may have changed
    kwargs = dict(config["kwargs"])
    for change in args.changes:
        key, _, value = change.partition("=")
        kwargs[key] = json.loads(value)
    model = hub.build(config["class"], kwargs, str(args.model))
    own = model.state_dict()
    kept = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    missing = sorted(set(own) - set(kept))
    if missing:
        raise SystemExit(f"the new model has weights the source lacks: {', '.join(missing)}")
    model.load_state_dict(kept, strict=True)
    hub.save_folder(model.eval(), args.out, name=args.out.name, task=config.get("task", "vocoder"),
                    training=config.get("training"))
    print(f"wrote {args.out} ({len(weights) - len(kept)} tensors dropped)")


if __name__ == "__main__":
    main()
