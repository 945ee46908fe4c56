"""Vocoders side by side: quality on real speech and speed on one CPU thread.

    python benchmarks/vocoder.py quality --data data/vocoder/val MODEL...   # WB-PESQ, MR-STFT per model
    python benchmarks/vocoder.py speed MODEL... [--seconds 10]             # against a HiFi-GAN V1 generator
    python benchmarks/vocoder.py pictures FILE OUT.png MODEL...            # log spectrograms (needs matplotlib)

MODEL is a name (``neuraudio models``), a model folder, or ``prior:apnet`` / ``prior:apnet-stream``: the untrained
classes, whose zero-initialised heads make them their classical phase prior alone (Griffin-Lim from a phase-vocoder
start / RTISI), with the pseudo-inverse amplitude. Quality reads every file under ``--data`` (its first
``--max-seconds``), resynthesizes it through the model's Processor face (analysis -> resynthesis, aligned), and
scores it against the file. Speed synthesizes the same ``--seconds`` of mel frames with each model (best of
``--repeats``) and with a generator of HiFi-GAN V1's published topology (upsampling 8, 8, 2, 2 from 512 channels,
multi-receptive-field blocks with kernels 3, 7, 11 and dilations 1, 3, 5; random weights: only its cost matters here).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import neuraudio
from neuraudio import metrics
from neuraudio.datasets.vocoder import VocoderFolder


def load(name: str):
    if name == "prior:apnet":
        from neuraudio.vocoding.apnet import APNet

        return APNet().eval()
    if name == "prior:apnet-stream":
        from neuraudio.vocoding.apnet import APNetStream

        return APNetStream().eval()
    return neuraudio.load(name)


def quality(args) -> None:
    models = {name: load(name) for name in args.models}
    rates = {m.sample_rate for m in models.values()}
    if rates != {16000}:
        raise SystemExit("quality compares 16 kHz vocoders (WB-PESQ); got rates " + ", ".join(map(str, rates)))
    folder = VocoderFolder(args.data, 16000)
    names = sorted(folder.clips)
    print(f"{len(names)} files from {args.data}, first {args.max_seconds:g} s of each, one thread")
    rows = {name: {"pesq": [], "mrstft": []} for name in models}
    for clip_name in names:
        clip = folder.clips[clip_name]
        audio = clip.read(0, min(clip.frames, int(args.max_seconds * 16000)))
        for name, model in models.items():
            with torch.inference_mode():
                y = model.process(audio)
            rows[name]["pesq"].append(metrics.pesq(y, audio, 16000))
            rows[name]["mrstft"].append(float(metrics.mrstft(y, audio)))
    print(f"{'model':28s} {'WB-PESQ':>8s} {'MR-STFT':>8s}")
    for name, r in rows.items():
        print(f"{name:28s} {sum(r['pesq']) / len(r['pesq']):8.3f} {sum(r['mrstft']) / len(r['mrstft']):8.3f}")


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2)
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2)
                                    for _ in dilations)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(nn.functional.leaky_relu(c1(nn.functional.leaky_relu(x, 0.1)), 0.1))
        return x


class HiFiGANV1(nn.Module):
    """HiFi-GAN V1's generator topology (Kong et al., 2020): 80 mels, hop 256."""

    def __init__(self, n_mels: int = 80, channels: int = 512, rates=(8, 8, 2, 2), kernels=(16, 16, 4, 4),
                 resblock_kernels=(3, 7, 11)):
        super().__init__()
        self.pre = nn.Conv1d(n_mels, channels, 7, padding=3)
        self.ups, self.blocks = nn.ModuleList(), nn.ModuleList()
        for i, (r, k) in enumerate(zip(rates, kernels)):
            c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, k, r, padding=(k - r) // 2))
            self.blocks.append(nn.ModuleList(ResBlock(c_out, rk) for rk in resblock_kernels))
        self.post = nn.Conv1d(channels // 2 ** len(rates), 1, 7, padding=3)

    def forward(self, mel):
        x = self.pre(mel)
        for up, blocks in zip(self.ups, self.blocks):
            x = up(nn.functional.leaky_relu(x, 0.1))
            x = sum(b(x) for b in blocks) / len(blocks)
        return torch.tanh(self.post(nn.functional.leaky_relu(x)))


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def speed(args) -> None:
    torch.set_num_threads(1)
    seconds = args.seconds
    hifigan = HiFiGANV1().eval()
    mel_256 = torch.randn(1, 80, int(seconds * 16000 / 256))
    with torch.inference_mode():
        reference = best_time(lambda: hifigan(mel_256), args.repeats)
    print(f"{seconds:g} s of 16 kHz audio from mel frames, one CPU thread, best of {args.repeats}")
    print(f"{'HiFi-GAN V1 generator (random weights)':44s} {reference:8.3f} s  RTF {reference / seconds:.4f}")
    gen = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(1, int(seconds * 16000), generator=gen)
    for name in args.models:
        model = load(name)
        mel = model.analyse(audio)
        with torch.inference_mode():
            t = best_time(lambda: model.synthesize(mel), args.repeats)
        print(f"{name:44s} {t:8.3f} s  RTF {t / seconds:.4f}  {reference / t:6.1f}x faster than HiFi-GAN V1")


def pictures(args) -> None:
    from plots import spectrograms

    audio, rate = neuraudio.read_audio(args.file, sample_rate=16000, channels=1)
    audio = audio[..., : int(args.max_seconds * 16000)]
    rows = [("original", audio)]
    for name in args.models:
        with torch.inference_mode():
            y = load(name).process(audio)
        rows.append((f"{name}  (WB-PESQ {metrics.pesq(y, audio, 16000):.2f})", y))
    spectrograms(rows, args.out, 16000, dpi=60, height=2.4, cmap="magma")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("models", nargs="+")
    q.add_argument("--data", required=True, help="a folder of real speech the models never trained on")
    q.add_argument("--max-seconds", type=float, default=8.0)
    s = sub.add_parser("speed")
    s.add_argument("models", nargs="+")
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("pictures")
    p.add_argument("file")
    p.add_argument("out")
    p.add_argument("models", nargs="+")
    p.add_argument("--max-seconds", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"quality": quality, "speed": speed, "pictures": pictures}[args.command](args)


if __name__ == "__main__":
    main()
