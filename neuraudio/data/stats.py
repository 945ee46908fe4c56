"""``neuraudio data stats DIR``: what a built folder holds, at a glance (counts, durations, histograms).

The kind is read from ``DIR/build.json`` (written by every builder); the figures come from the per-item metadata
(``manifest.jsonl``), and for speech the pitch range is measured on the audio of up to 200 utterances.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from neuraudio.data.common import median_f0


def histogram(values, edges, unit: str = "", width: int = 30) -> list[str]:
    """Text histogram lines: ``[lo, hi) unit  ####  count``."""
    counts, _ = np.histogram(values, bins=edges)
    top = max(1, counts.max()) if len(counts) else 1
    return [f"  {lo:7.2f}..{hi:<7.2f}{unit:3s} {'#' * round(width * c / top):<{width}s} {c}"
            for lo, hi, c in zip(edges[:-1], edges[1:], counts)]


def _manifest(root: Path) -> tuple[dict, list[dict]]:
    build_file = root / "build.json"
    if not build_file.is_file():
        raise ValueError(f"{root}: no build.json here; give a folder written by `neuraudio data`.")
    build = json.loads(build_file.read_text())
    entries = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return build, entries


def _f0_range(root: Path, entries: list[dict], limit: int = 200) -> list[float]:
    pitches = []
    for entry in entries[:limit]:
        x, rate = sf.read(root / entry["file"], dtype="float64")
        f0 = median_f0(x if x.ndim == 1 else x.mean(axis=1), rate)
        if f0 > 0:
            pitches.append(f0)
    return pitches


def stats(root: str | Path) -> dict:
    """The figures of a built folder as a dict (``kind`` plus kind-specific counts and lists)."""
    root = Path(root)
    build, entries = _manifest(root)
    kind = build["kind"]
    result: dict = {"kind": kind, "items": len(entries)}
    if kind == "speech":
        result["minutes"] = sum(e["seconds"] for e in entries) / 60
        result["voices"] = len({e["voice"] for e in entries})
        result["speakers"] = len({e["speaker"] for e in entries})
        result["engines"] = dict(Counter(e["voice"].split(":")[0] for e in entries))
        result["f0_hz"] = _f0_range(root, entries)
        result["rate"] = [e["rate"] for e in entries if "rate" in e]
    elif kind == "echo":
        result["minutes"] = sum(e["seconds"] for e in entries) / 60
        result["scenarios"] = dict(Counter(e["scenario"] for e in entries))
        result["nonlinearities"] = dict(Counter(e["nonlinearity"] for e in entries))
        for key in ("rt60", "snr_db", "ser_db", "drift_ppm"):
            result[key] = [e[key] for e in entries]
        result["bulk_delay_ms"] = [1000 * e["bulk_delay_samples"] / e["sample_rate"] for e in entries]
    elif kind == "music":
        result["minutes"] = sum(e["seconds"] for e in entries) / 60
        result["stems_per_song"] = float(np.mean([len(e["stems"]) for e in entries]))
        stems: dict[str, dict] = {}
        for e in entries:
            for name, s in e["stems"].items():
                d = stems.setdefault(name, {"songs": 0, "programs": Counter(), "soundfonts": Counter()})
                d["songs"] += 1
                d["programs"][s["program"]] += 1
                d["soundfonts"][s["soundfont"]] += 1
        result["stems"] = {k: {"songs": v["songs"], "programs": dict(v["programs"]), "soundfonts": dict(v["soundfonts"])}
                           for k, v in stems.items()}
        result["tempo_bpm"] = [e["tempo_bpm"] for e in entries]
        result["grooves"] = dict(Counter(e["groove"] for e in entries))
    elif kind == "noise":
        result["minutes"] = sum(e["seconds"] for e in entries) / 60
        result["kinds"] = dict(Counter(e["kind"] for e in entries))
        result["level_db"] = [e["level_db"] for e in entries]
    else:
        raise ValueError(f"{root}: unknown kind {kind!r} in build.json.")
    return result


def report(root: str | Path) -> str:
    """Human-readable lines of :func:`stats`."""
    s = stats(root)
    lines = [f"{root}: {s['kind']}, {s['items']} items, {s['minutes']:.1f} min"]
    if s["kind"] == "speech":
        lines.append(f"voices {s['voices']} (speakers after warping: {s['speakers']}); engines {s['engines']}")
        if s["f0_hz"]:
            f0 = np.array(s["f0_hz"])
            lines.append(f"median pitch per utterance: {f0.min():.0f}-{f0.max():.0f} Hz "
                         f"(10th-90th percentile {np.percentile(f0, 10):.0f}-{np.percentile(f0, 90):.0f} Hz)")
            lines += histogram(f0, np.geomspace(60, 400, 9), "Hz")
    elif s["kind"] == "echo":
        lines.append(f"scenarios {s['scenarios']}; loudspeaker {s['nonlinearities']}")
        for key, edges, unit in (("rt60", np.linspace(0.1, 1.0, 7), "s"), ("snr_db", np.linspace(0, 40, 9), "dB"),
                                 ("ser_db", np.linspace(-10, 10, 9), "dB"),
                                 ("bulk_delay_ms", np.linspace(0, 200, 9), "ms"),
                                 ("drift_ppm", np.linspace(-100, 100, 9), "ppm")):
            lines.append(f"{key}:")
            lines += histogram(s[key], edges, unit)
    elif s["kind"] == "music":
        lines.append(f"stems per song {s['stems_per_song']:.2f}; grooves {s['grooves']}")
        for name, d in sorted(s["stems"].items()):
            lines.append(f"  {name:8s} in {d['songs']} songs, {len(d['programs'])} programs, soundfonts {d['soundfonts']}")
        lines.append("tempo:")
        lines += histogram(s["tempo_bpm"], np.linspace(70, 160, 7), "bpm")
    elif s["kind"] == "noise":
        lines.append(f"kinds {s['kinds']}")
        lines += histogram(s["level_db"], np.linspace(-30, -15, 6), "dB")
    return "\n".join(lines)
