"""Echo-cancellation training items made on the fly (``EchoDataModule`` with ``speech=``): every item is a new draw
of ``neuraudio.data.echo``'s clip recipe (room, loudspeaker nonlinearity, bulk delay 0-200 ms, clock drift,
scenario, SER, SNR) over random excerpts of speech and noise folders.

The image method is the slow part of a draw, so rooms are computed for the first ``room_pool`` items a worker makes
and then reused (a new room one item in ten); with ``rir`` (a folder of measured impulse responses), a share
``measured_probability`` of items takes two random measured responses instead (loudspeaker -> mic, talker -> mic).

Items: ``{"mic", "ref", "target", "echoless"}``, each ``(1, crop)`` float32 (``echoless``: the microphone without its
echo, near end + noise, what the echo mask alone should leave), and with ``linear_stage=True`` also ``{"e", "y"}``:
``aec-linear``'s adaptive filter run over the item (error and echo estimate), which a neural stage behind it reads.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from neuraudio.audio import audio_files_under, read_audio
from neuraudio.data.echo import draw_params, room_rirs, simulate
from neuraudio.data.sources import AudioPool, ColoredNoisePool


class EchoSynthSet(Dataset):
    """``count`` random echo-cancellation items of ``crop`` samples (module docstring).

    Args:
        speech, noise, rir: folders (noise ``None``: generated coloured noise; rir ``None``: simulated rooms only).
        sample_rate: Hz.
        crop: samples per item (a multiple of the linear stage's hop when ``linear_stage``).
        count: items per epoch.
        measured_probability: share of items in a measured room (needs ``rir``).
        room_pool: simulated rooms a worker keeps.
        linear_stage: add the linear canceller's ``e`` and ``y``.
        seed: fixes every item (a validation set); ``None`` draws from torch's generator (seeded per worker).
    """

    def __init__(self, speech, noise, rir, sample_rate: int, crop: int, count: int,
                 measured_probability: float = 0.3, room_pool: int = 64, linear_stage: bool = False,
                 seed: int | None = None):
        self.speech = AudioPool(speech, sample_rate, "speech")
        self.noise = AudioPool(noise, sample_rate, "noise") if noise else ColoredNoisePool(sample_rate)
        self.measured = [read_audio(p, sample_rate=sample_rate, channels=1)[0][0].double().numpy()
                         for p in audio_files_under(rir)] if rir else []
        if measured_probability and rir and not self.measured:
            raise ValueError(f"{rir}: holds no impulse responses.")
        self.sample_rate, self.crop, self.count, self.seed = sample_rate, int(crop), int(count), seed
        self.measured_probability = float(measured_probability) if self.measured else 0.0
        self.room_pool, self.rooms = int(room_pool), []
        self.linear = None
        if linear_stage:
            from neuraudio.aec.linear import LinearAEC

            self.linear = LinearAEC(sample_rate)
            if self.crop % self.linear.hop:
                raise ValueError(f"crop must be a multiple of the linear stage's hop {self.linear.hop}, got {crop}.")

    def __len__(self) -> int:
        return self.count

    def _rirs(self, rng: np.random.Generator, params: dict) -> tuple[np.ndarray, np.ndarray]:
        if self.measured and rng.random() < self.measured_probability:
            i, j = rng.integers(len(self.measured), size=2)
            return self.measured[i], self.measured[j]
        if len(self.rooms) < self.room_pool or rng.random() < 0.1:
            rirs = room_rirs(params, self.sample_rate)
            if len(self.rooms) < self.room_pool:
                self.rooms.append(rirs)
            else:
                self.rooms[int(rng.integers(self.room_pool))] = rirs
            return rirs
        return self.rooms[int(rng.integers(len(self.rooms)))]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.seed is None:
            entropy = int(torch.randint(0, 2**62, (1,)))
        else:
            entropy = self.seed * 1_000_003 + index
        rng = np.random.default_rng(entropy)
        params = draw_params(rng, self.sample_rate)
        far, _ = self.speech.excerpt(rng, self.crop)
        near, _ = self.speech.excerpt(rng, self.crop)
        noise, _ = self.noise.excerpt(rng, self.crop)
        parts = simulate(params, far, near, noise, self.sample_rate, rirs=self._rirs(rng, params))
        parts["echoless"] = parts["target"] + parts["noise"]
        item = {k: torch.from_numpy(np.ascontiguousarray(parts[k], dtype=np.float32))[None]
                for k in ("mic", "ref", "target", "echoless")}
        if self.linear is not None:
            with torch.no_grad():
                e, y = self.linear.linear_signals(item["mic"][0], item["ref"][0])
            item["e"], item["y"] = e[None], y[None]
        return item
