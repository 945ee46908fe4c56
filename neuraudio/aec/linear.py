"""Linear acoustic echo canceller: bulk-delay tracking, a two-path partitioned-block frequency-domain adaptive
filter, a per-bin residual echo subtraction and a residual echo suppressor. Inputs ``mic`` and ``ref`` (what the
loudspeaker was sent), 16 kHz, 10 ms blocks.

Per block of ``N = hop`` samples:

1. **Bulk delay.** GCC-PHAT (:class:`neuraudio.stream.delay.DelayTracker`) follows the delay of the echo behind
   ``ref`` (0-``max_delay_ms``, drifting clocks included); the filter's window starts ``margin`` partitions before
   it, in whole partitions, and its taps shift with it when the estimate moves.
2. **Adaptive filter** (overlap-save PBFDAF, FFT size ``2N``, ``partitions`` x ``N`` taps, NLMS normalised per bin,
   gradient constrained): a *background* filter adapts on every block; the *foreground* filter, which makes the
   output, copies it when its error is clearly lower, and the background falls back to the foreground when it
   diverges (double talk). The error ``e = mic - foreground echo estimate`` is the linear stage's output.
3. **Residual echo subtraction** (knob ``residual_subtraction``, 0..1, default 0) on a sqrt-hann STFT of ``e``
   and ``y`` (frame ``2N``, hop ``N``): per bin ``E - w Y`` with ``w = <E conj(Y)> / <|Y|^2>`` over the past 0.2 s
   (:func:`subtract_residual`): what is left of the echo that is still a multiple of the estimate in its bin (a
   filter lagging a drifting clock or a changed path, or mis-adapted in noise) goes; the near end, uncorrelated
   with ``Y``, averages out of ``w``. The synthetic clips' drift and noise are much of what the filter cannot
   follow (``benchmarks/aec.py`` prints the echo it removes by itself). Off by default: it raised ERLE from 2 s on
   by 1.4-1.5 dB on the synthetic validation and test sets but costs the first half second of convergence
   (``tests/test_aec_linear.py``) and, on the test set, 1 dB of the near end's own gain in double talk.
4. **Residual echo suppressor** on the same frames of step 3's ``E``: per bin,
   ``G = max(floor, 1 - over * R / |E|^2)`` with the residual echo ``R = leak * |Y|^2`` (``Y`` the echo estimate in
   the same frame, ``leak`` tracked from the correlation of ``|E|^2`` and ``|Y|^2`` where the far end is active),
   powers smoothed over frames. It removes what the linear filter cannot (tails, loudspeaker nonlinearity) and
   leaves bins where the near end dominates.
5. **Noise postfilter** (knob ``noise_reduction_db``, 0 = off): the log-MMSE gain and MCRA noise tracker of
   ``denoise-mmse`` on the same frames of ``e``; each bin takes the lower of the two gains.

Latency: ``N`` samples (10 ms), from the suppressor's overlap-add; a stream of any block size adds ``N - 1``.

Example:
    >>> aec = neuraudio.load("aec-linear")
    >>> out = aec.process(mic, ref)              # (1, time) each, at 16 kHz
"""

from __future__ import annotations

from typing import Mapping

import torch

from neuraudio.enhancement.mmse import init_mmse_state, mmse_gain
from neuraudio.stream.delay import DelayTracker
from neuraudio.stream.knobs import Knob
from neuraudio.stream.processor import Processor


RESIDUAL_SMOOTHING = 0.95  # step 3: weight of the past frames in E conj(Y) and |Y|^2 (about 20 frames, 0.2 s)


def subtract_residual(e_spec: torch.Tensor, y_spec: torch.Tensor, y_power: torch.Tensor, stats: dict,
                      amount: float = 1.0) -> torch.Tensor:
    """Step 3 (module docstring) for one frame: ``E - amount w Y`` per bin, ``w = <E conj(Y)> / <|Y|^2>`` averaged
    over the past frames (exponentially, :data:`RESIDUAL_SMOOTHING`; causal: this frame updates ``stats`` after its
    own ``w``). ``stats``: ``"cross"`` (complex) and ``"y_power"`` shaped as a frame's bins, zeros at first; the
    dict's entries are replaced. Any leading shape (channels, batch)."""
    w = stats["cross"] / (stats["y_power"] + 1e-12)
    stats["cross"] = RESIDUAL_SMOOTHING * stats["cross"] + (1 - RESIDUAL_SMOOTHING) * e_spec * y_spec.conj()
    stats["y_power"] = RESIDUAL_SMOOTHING * stats["y_power"] + (1 - RESIDUAL_SMOOTHING) * y_power
    return e_spec - (w * y_spec if amount == 1.0 else amount * w * y_spec)


class LinearAEC(Processor):
    """Classical linear echo canceller with residual echo suppression (see the module docstring).

    Args:
        sample_rate: Hz.
        hop: block (and partition) length in samples.
        partitions: adaptive filter length in blocks (after the bulk delay).
        max_delay_ms: largest bulk delay tracked.
        margin: partitions of the filter placed before the estimated delay.
        step: NLMS step of the background filter (0..1).
    """

    task = "echo"
    inputs = {"mic": 1, "ref": 1}
    out_channels = 1
    knobs = {"suppression": Knob(2.0, 0.0, 8.0, "x", "over-subtraction of the residual echo (0: linear filter only)"),
             "floor_db": Knob(-30.0, -60.0, 0.0, "dB", "the most the suppressor attenuates a bin"),
             "residual_subtraction": Knob(0.0, 0.0, 1.0, "x", "how much of the per-bin residual echo estimate "
                                          "w Y is subtracted before the suppressor (0: none)"),
             "noise_reduction_db": Knob(0.0, 0.0, 40.0, "dB",
                                        "the most the noise postfilter attenuates a bin (0: no noise suppression)")}

    def __init__(self, sample_rate: int = 16000, hop: int = 160, partitions: int = 40, max_delay_ms: float = 250.0,
                 margin: int = 2, step: float = 1.0):
        super().__init__(sample_rate, hop)
        if partitions < 1 or margin < 0 or not 0 < step <= 1:
            raise ValueError(f"need partitions >= 1, margin >= 0 and 0 < step <= 1, got {partitions}, {margin}, {step}.")
        self.partitions, self.margin, self.step_size = int(partitions), int(margin), float(step)
        self.max_delay = int(max_delay_ms * sample_rate / 1000)
        self.noise_window = max(2, round(1.5 * sample_rate / hop / 2))  # the noise tracker's 1.5 s minimum search
        n = hop
        self.register_buffer("window", torch.hann_window(2 * n, periodic=True).sqrt(), persistent=False)

    @property
    def step_latency(self) -> int:
        return self.hop

    def init_state(self, channels: int, max_samples: int, device) -> dict:
        n, p = self.hop, self.partitions
        bins = n + 1
        history = self.max_delay + (p + 2) * n
        zeros = lambda *shape, dtype=torch.float32: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731
        return {
            "ref": zeros(history), "offset": 0,
            "tracker": DelayTracker(self.max_delay, hop=10 * n, smoothing=0.8),
            "background": zeros(p, bins, dtype=torch.complex64), "foreground": zeros(p, bins, dtype=torch.complex64),
            "power": zeros(bins) + 1e-6, "e_bg": 1e-9, "e_fg": 1e-9,
            "e_prev": zeros(n), "y_prev": zeros(n), "res_tail": zeros(n),
            "see": zeros(bins), "syy": zeros(bins), "sey": zeros(bins), "leak": 0.5,
            "cross": zeros(bins, dtype=torch.complex64), "y_power": zeros(bins),  # step 3's statistics
            "noise": init_mmse_state((), bins, device),
            "x": None, "x_offset": None,  # the reference's partition spectra and the offset they were taken at
        }

    def _spectra(self, ref: torch.Tensor, offset: int, count: int | None = None) -> torch.Tensor:
        """Spectra (count, bins) of the newest ``count`` (default: every partition's) 2N-sample frames of the
        delayed reference, newest first."""
        n, count = self.hop, self.partitions if count is None else count
        end = ref.numel() - offset
        if count == 1:  # a block's usual case: the newest frame alone
            return torch.fft.rfft(ref[end - 2 * n : end])[None]
        frames = ref[end - (count + 1) * n : end].unfold(0, 2 * n, n).flip(0)  # newest first
        return torch.fft.rfft(frames, dim=-1)

    def _block(self, mic: torch.Tensor, ref: torch.Tensor, s: dict, suppression: float, floor: float,
               noise_floor: float = 1.0, subtraction: float = 0.0) -> torch.Tensor:
        e_fg, y_fg = self.linear_block(mic, ref, s)
        return self._suppress(e_fg, y_fg, s, suppression, floor, noise_floor, subtraction)

    def linear_block(self, mic: torch.Tensor, ref: torch.Tensor, s: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1 and 2 for one block of ``hop`` samples: the error ``e = mic - y`` and the foreground echo
        estimate ``y``, each ``(hop,)``; ``s`` (from :meth:`init_state`) is updated. What a neural stage behind this
        one reads."""
        n = self.hop
        s["ref"] = torch.cat([s["ref"][n:], ref])
        delay = s["tracker"].update(ref, mic)
        if delay is not None:  # the filter window starts `margin` partitions before the echo, in whole partitions
            offset = max(0, delay // n - self.margin) * n
            shift = (offset - s["offset"]) // n
            if shift:
                for key in ("background", "foreground"):
                    s[key] = torch.roll(s[key], shifts=shift, dims=0)
                    if shift > 0:
                        s[key][:shift] = 0
                    else:
                        s[key][shift:] = 0
                s["offset"] = offset
        if s["x_offset"] == s["offset"]:  # the partitions move one block older: only the newest frame is new
            x = torch.cat([self._spectra(s["ref"], s["offset"], 1), s["x"][:-1]])
        else:
            x = self._spectra(s["ref"], s["offset"])
        s["x"], s["x_offset"] = x, s["offset"]
        # both filters' echo estimates in one batched product and inverse FFT
        y_bg, y_fg = torch.fft.irfft((torch.stack([s["background"], s["foreground"]]) * x).sum(1), 2 * n)[:, n:]
        e_bg, e_fg = mic - y_bg, mic - y_fg
        # per-bin input energy in the filter's memory (all partitions), lightly smoothed, regularised
        s["power"] = 0.5 * s["power"] + 0.5 * (x.real.square() + x.imag.square()).sum(0)
        regular = 1e-3 * float(s["power"].mean()) + 1e-12
        # background NLMS, gradient constrained to N taps per partition
        error_spec = torch.fft.rfft(torch.nn.functional.pad(e_bg, (n, 0)))  # overlap-save: zeros, then the error
        gradient = torch.fft.irfft(x.conj() * (error_spec / (s["power"] + regular)), 2 * n)
        # the constraint: keep the first N taps of each partition (rfft zero-pads them back to 2N)
        update = torch.fft.rfft(gradient[:, :n], 2 * n, dim=-1)
        s["background"] = s["background"] + (update if self.step_size == 1.0 else self.step_size * update)
        # two-path: the foreground takes the background when it is clearly better; the background falls back
        s["e_bg"] = 0.7 * s["e_bg"] + 0.3 * float(torch.dot(e_bg, e_bg))
        s["e_fg"] = 0.7 * s["e_fg"] + 0.3 * float(torch.dot(e_fg, e_fg))
        if s["e_bg"] < 0.7 * s["e_fg"]:
            s["foreground"] = s["background"].clone()
            s["e_fg"] = s["e_bg"]
        elif s["e_bg"] > 4.0 * s["e_fg"]:
            s["background"] = s["foreground"].clone()
            s["e_bg"] = s["e_fg"]
        return e_fg, y_fg

    def linear_signals(self, mic: torch.Tensor, ref: torch.Tensor, state: dict | None = None):
        """:meth:`linear_block` over whole hops of one channel ``(time,)``: ``(e, y)``, each ``(time,)``; ``state``
        (``None``: a fresh one) carries on between calls."""
        state = self.init_state(1, mic.shape[-1], mic.device) if state is None else state
        n = self.hop
        with torch.inference_mode():  # see _run
            pairs = [self.linear_block(mic[s : s + n].float(), ref[s : s + n].float(), state)
                     for s in range(0, mic.shape[-1], n)]
        if not pairs:
            return mic.new_zeros(0), mic.new_zeros(0)
        return torch.cat([e for e, _ in pairs]), torch.cat([y for _, y in pairs])

    def _suppress(self, e_fg: torch.Tensor, y_fg: torch.Tensor, s: dict, suppression: float, floor: float,
                  noise_floor: float, subtraction: float = 0.0) -> torch.Tensor:
        """Steps 3 to 5: the output block (delayed by ``hop`` by the overlap-add)."""
        n = self.hop
        # residual echo suppression on a sqrt-hann STFT of e (frame 2N, hop N)
        frames = torch.stack([torch.cat([s["e_prev"], e_fg]), torch.cat([s["y_prev"], y_fg])]) * self.window
        s["e_prev"], s["y_prev"] = e_fg, y_fg
        e_spec, y_spec = torch.fft.rfft(frames)
        py = y_spec.real.square() + y_spec.imag.square()
        if subtraction > 0.0:
            e_spec = subtract_residual(e_spec, y_spec, py, s, subtraction)
        pe = e_spec.real.square() + e_spec.imag.square()
        s["see"] = 0.6 * s["see"] + 0.4 * pe
        s["syy"] = 0.6 * s["syy"] + 0.4 * py
        s["sey"] = 0.95 * s["sey"] + 0.05 * pe * py
        if float(py.sum()) > 1e-9:  # the far end is active. leak: how much of |Y|^2 remains in |E|^2
            s["leak"] = min(1.0, max(0.005, float(s["sey"].sum() / (s["syy"].pow(2).sum() + 1e-20))))
        residual = s["leak"] * s["syy"]
        gain = (1.0 - suppression * residual / s["see"].clamp_min(1e-20)).clamp(min=floor, max=1.0)
        if noise_floor < 1.0:  # the noise postfilter (log-MMSE with an MCRA tracker, as denoise-mmse) on the error
            across = torch.nn.functional.pad(pe[None], (1, 1), mode="replicate")[0]
            across = 0.25 * across[:-2] + 0.5 * pe + 0.25 * across[2:]
            noise_gain = mmse_gain(pe, across, s["noise"], noise_floor, self.noise_window)
            gain = torch.minimum(gain, noise_gain.to(gain.dtype))
        out_frame = torch.fft.irfft(e_spec * gain, 2 * n) * self.window
        out = s["res_tail"] + out_frame[:n]
        s["res_tail"] = out_frame[n:]
        return out

    def _run(self, mic: torch.Tensor, ref: torch.Tensor, state: dict, knobs: Mapping[str, torch.Tensor]):
        n = self.hop
        mic32, ref32 = mic.float().reshape(-1), ref.float().reshape(-1)
        suppression, floor_db = knobs["suppression"].reshape(-1), knobs["floor_db"].reshape(-1)
        reduction = knobs["noise_reduction_db"].reshape(-1)
        subtraction = knobs["residual_subtraction"].reshape(-1)
        out = []
        # Inference mode: a block is some forty small tensor operations, where PyTorch's per-call bookkeeping, not
        # the arithmetic, is most of the time, and inference mode skips the most of it (the same numbers). The state
        # holds inference tensors from then on, only ever touched in here; what is returned is concatenated outside,
        # so the caller gets ordinary tensors.
        with torch.inference_mode():
            for start in range(0, mic32.numel(), n):
                k = start + n - 1  # the knobs' values at the block's last sample
                floor = 10 ** (float(floor_db[k]) / 20)
                noise_floor = 10 ** (-float(reduction[k]) / 20)
                out.append(self._block(mic32[start : start + n], ref32[start : start + n], state,
                                       float(suppression[k]), floor, noise_floor, float(subtraction[k])))
        return torch.cat(out).to(mic.dtype).reshape(mic.shape)

    def forward(self, x, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mic, ref = x
        length = mic.shape[-1]
        mics, refs = mic.reshape(-1, length), ref.reshape(-1, length)
        rows = {n: v.reshape(-1, length) for n, v in knobs.items()}  # one row of knobs per item, or one for all
        outputs = []
        for i in range(mics.shape[0]):  # each batch item has its own adaptive filters
            state = self.init_state(1, length, mic.device)
            item_knobs = {n: v[min(i, v.shape[0] - 1)] for n, v in rows.items()}
            outputs.append(self._run(mics[i], refs[i], state, item_knobs))
        return torch.stack(outputs).reshape(mic.shape)

    def step(self, x, state: dict, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mic, ref = x
        return self._run(mic, ref, state, knobs)
