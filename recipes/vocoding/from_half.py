"""Turn a float16 snapshot (``NAME/config.json`` + ``NAME/model.fp16.safetensors``, how a lent GPU machine sends
trained vocoders back within its file limits) into a model folder in float32:

    python recipes/vocoding/from_half.py SNAPSHOT_DIR OUT_DIR [--name NAME]
"""

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from neuraudio import hub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--name")
    args = parser.parse_args()
    config = json.loads((args.snapshot / "config.json").read_text())
    model = hub.build(config["class"], config["kwargs"], str(args.snapshot))
    state = {k: v.float() for k, v in load_file(args.snapshot / "model.fp16.safetensors").items()}
    model.load_state_dict(state, strict=True)
    name = args.name or args.out.name
    hub.save_folder(model.eval(), args.out, name=name, task=config.get("task", "vocoder"),
                    training=config.get("training"), metrics=config.get("metrics"), summary=config.get("summary", ""))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
