"""``neuraudio eval TASK --model NAME_OR_PATH --data DIR``: run a model over a folder in its task's layout and
report per-item and mean metrics. The command behind every figure in a model card.

Tasks and metrics:
    effect       effects layout; every take, whole signal, ignore ranges masked: ESR (pre-emphasised), ESR, MR-STFT
    enhancement  paired DIR/{clean,noisy} (or clean + noise mixed with seed 0): SI-SDR, SDR, and PESQ / STOI at 16 kHz
                 when the [eval] extra is installed; each also for the noisy input (``*_input``)
    vocoder      DIR/**/*.wav resynthesised (analysis -> resynthesis): MR-STFT, SI-SDR, and PESQ / STOI at 16 kHz
                 when the [eval] extra is installed (meaningful for speech)
    separation   DIR/<song>/<stem>.wav: SDR per stem
    echo         DIR/<clip>/{mic,ref,target}.wav (+ meta.json's scenario): ERLE where only the far end talks; SI-SDR
                 against the target, the output's level over the target's and the target's own gain in the output
                 (``20 log10(<out, s> / <s, s>)``) where the near end talks (double talk, near end only); WB-PESQ of
                 the output against the microphone in near-end single talk ([eval] extra); ERLE and SI-SDR for clips
                 without a scenario
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch

from neuraudio.audio import resample
from neuraudio.stream.processor import Processor
from neuraudio import metrics

TASKS = ("effect", "enhancement", "vocoder", "separation", "echo")


def _effect(model: Processor, root) -> Iterator[tuple[str, dict[str, float]]]:
    from neuraudio.datasets.effects import EffectsFolder

    folder = EffectsFolder(root, model.sample_rate)
    mask = folder.mask[None]
    for i, (name, _, knobs) in enumerate(folder.takes):
        unknown = sorted(set(knobs) ^ set(model.knobs))
        if unknown:
            raise ValueError(f"take {name}: knobs {sorted(knobs)} do not match the model's {sorted(model.knobs)}.")
        y_hat = model.process(folder.x, **knobs)
        y = folder.y[i]
        yield name, {"esr": metrics.esr(y_hat, y, mask), "esr_raw": metrics.esr(y_hat, y, mask, pre_emphasis_coefficient=None),
                     "mrstft": metrics.mrstft(y_hat * mask, y * mask)}


def _enhancement(model: Processor, root):
    from neuraudio.datasets.common import split_names
    from neuraudio.datasets.enhancement import EnhancementFolder, EnhancementSet

    folder = EnhancementFolder(root, model.sample_rate)
    names = split_names(list(folder.clean), 0.0, 0)[0]
    dataset = EnhancementSet(folder, names, None, seed=0)
    for i, name in enumerate(names):
        item = dataset[i]
        estimate = model.process(item["noisy"])
        row = {"si_sdr": metrics.si_sdr(estimate, item["clean"]), "sdr": metrics.sdr(estimate, item["clean"]),
               "si_sdr_input": metrics.si_sdr(item["noisy"], item["clean"])}
        row.update(_speech_scores(estimate, item["clean"], model.sample_rate))
        # the noisy input's own scores beside the model's: what it improved on
        row.update({f"{k}_input": v for k, v in _speech_scores(item["noisy"], item["clean"], model.sample_rate).items()})
        yield name, row


def _speech_scores(estimate, clean, rate) -> dict[str, float]:
    try:
        import pesq  # noqa: F401
        import pystoi  # noqa: F401
    except ImportError:
        return {}
    est16, ref16 = resample(estimate, rate, 16000), resample(clean, rate, 16000)
    return {"pesq_wb": metrics.pesq(est16, ref16, 16000), "stoi": metrics.stoi(est16, ref16, 16000)}


def _vocoder(model: Processor, root):
    from neuraudio.datasets.vocoder import VocoderFolder

    folder = VocoderFolder(root, model.sample_rate)
    for name, clip in folder.clips.items():
        audio = clip.read()
        y = model.process(audio)
        row = {"mrstft": metrics.mrstft(y, audio), "si_sdr": metrics.si_sdr(y, audio)}
        row.update(_speech_scores(y, audio, model.sample_rate))
        yield name, row


def _separation(model: Processor, root):
    from neuraudio.datasets.separation import SeparationFolder

    stems = list(getattr(model, "stems", []))
    if not stems:
        raise ValueError("separation needs a model that names its stems (model.stems).")
    folder = SeparationFolder(root, model.sample_rate, model.in_channels, stems)
    for song in folder.songs:
        item = folder.read(song, 0, folder.frames(song))
        estimate = model.process(item["mixture"])
        row = {}
        for i, s in enumerate(stems):
            target = item["stems"][i]
            if float(target.pow(2).mean()) <= 1e-8:
                continue  # a stem silent in this song: SDR is undefined
            row[f"sdr_{s}"] = metrics.sdr(estimate[i], target)
            row[f"si_sdr_{s}"] = metrics.si_sdr(estimate[i], target)
            row[f"sdr_{s}_input"] = metrics.sdr(item["mixture"], target)  # the mixture as the estimate: the floor
        sdrs = [float(v) for k, v in row.items() if k.startswith("sdr_") and not k.endswith("_input")]
        if sdrs:
            row["sdr"] = sum(sdrs) / len(sdrs)
        yield song, row


def _echo(model: Processor, root):
    from neuraudio.datasets.echo import EchoFolder

    import json
    from pathlib import Path

    folder = EchoFolder(root, model.sample_rate)
    for name, parts in folder.clips.items():
        mic, ref, target = (parts[p].read(0, folder.frames(name)) for p in ("mic", "ref", "target"))
        out = model.process(mic, ref)
        meta = Path(root) / name / "meta.json"
        scenario = json.loads(meta.read_text()).get("scenario") if meta.is_file() else None
        if scenario == "far_end_only":  # only echo (and noise) to remove: how much of it went
            yield name, {"erle_far_end": metrics.erle(mic, out)}
        elif scenario in ("double_talk", "near_end_only"):  # the near end must survive
            level = 10 * torch.log10(out.pow(2).sum() / target.pow(2).sum().clamp_min(1e-20))
            scores = {f"si_sdr_{scenario}": metrics.si_sdr(out, target), f"level_db_{scenario}": level,
                      f"gain_db_{scenario}": metrics.near_end_gain(out, target)}
            if scenario == "near_end_only" and model.sample_rate in (8000, 16000):
                try:  # the talker alone: the output should be the microphone, untouched (the [eval] extra)
                    scores["pesq_near_end_only_vs_mic"] = metrics.pesq(out[0], mic[0], model.sample_rate)
                except Exception:  # noqa: BLE001 - no [eval] extra, or pesq refuses a silent or too short clip
                    pass
            yield name, scores
        else:
            yield name, {"erle": metrics.erle(mic, out), "si_sdr": metrics.si_sdr(out, target)}


RUNNERS: dict[str, Callable] = {"effect": _effect, "enhancement": _enhancement, "vocoder": _vocoder,
                                "separation": _separation, "echo": _echo}


@torch.inference_mode()
def evaluate(task: str, model: Processor, root, progress: Callable[[str], None] | None = None) -> dict:
    """``{"task", "items": {name: {metric: value}}, "mean": {metric: value}}``."""
    if task not in RUNNERS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}.")
    if model.task != task:
        what = f"a model of the {model.task} task" if model.task else "a model of no declared task"
        article = "an" if task[0] in "aeiou" else "a"
        raise ValueError(f"{type(model).__name__} is {what}; `eval {task}` needs {article} {task} model.")
    items = {}
    for name, row in RUNNERS[task](model, root):
        items[name] = {k: float(v) for k, v in row.items()}
        if progress:
            progress(name)
    keys = sorted({k for row in items.values() for k in row})
    mean = {k: sum(r[k] for r in items.values() if k in r) / sum(1 for r in items.values() if k in r) for k in keys}
    return {"task": task, "items": items, "mean": {k: v for k, v in mean.items() if not math.isnan(v)}}
