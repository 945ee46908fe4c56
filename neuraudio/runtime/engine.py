"""The real-time engine: what a plugin host calls from its audio callback.

Conventions follow JUCE's AudioProcessor (prepare / process / reset / reported latency) and pedalboard (processing
in blocks equals processing at once; ``reset`` clears audio state and keeps the knobs).

    >>> engine = Engine(neuraudio.load("klon-centaur"), sample_rate=44100, block_size=128, channels=2)
    >>> engine.prepare()                   # allocates everything and warms up; call it off the audio thread
    >>> engine.set_knobs(gain=0.6)         # from any thread
    >>> out = engine.process(block)        # (2, n) numpy or torch, n <= 128 -> (2, n) of the same kind
    >>> engine.latency, engine.stats()     # samples to compensate; per-block compute times

``process`` returns a view of the engine's output buffer, valid until the next call (copy it to keep it), or
writes into ``out=`` when given.

Two paths run a model:

* **direct** (models with a hop of one sample, e.g. every effect model, and models with a longer hop when the host
  promises blocks of whole hops with ``block_multiple``): the block goes straight to the model's ``step`` with
  pre-allocated input, knob and state buffers. On CUDA the step for a full block is captured once as a CUDA graph
  and replayed (a shorter block runs eagerly); a model whose step cannot be captured falls back to eager
  execution, and ``engine.graph`` / ``engine.fallback_reason`` say so.
* **stream** (models with a longer hop fed blocks of any length, e.g. STFT models without ``block_multiple``):
  through :class:`neuraudio.stream.Stream`, eagerly, since the number of hops per block varies.

Both give the same numbers as ``model.process`` with the knob trajectory of :func:`knob_trajectory` (tests check
1e-5). A block containing NaN or Inf produces silence, resets the model's state and is counted; it never reaches
the model. On CPU, denormals are flushed to zero; on CUDA in float32, cuDNN's TF32 convolutions are turned off (both
process-wide torch settings, made in ``prepare``).

Python's garbage collector: a full collection walks every object the process tracks (over a hundred thousand with
torch and neuraudio imported), and one falls, unannounced, on whichever call allocates at the wrong moment: through
aec-16k's Engine, ``neuraudio bench`` showed one block in a thousand taking 66-74 ms, where the others took at most
3 ms. ``prepare`` therefore collects once and freezes what exists (``gc.freeze``: the model, torch, the host's
objects), so later collections walk only what was made since (the same bench: worst block 2.9-3.1 ms), even for a host
that never calls :func:`neuraudio.runtime.prepare_audio_thread` (which also disables the collector on the audio
thread, keeps the heap and sets the scheduler). Process-wide, like the torch settings; frozen objects are never
collected, so those that become cyclic garbage later stay allocated. Pass ``freeze_gc=False`` to leave the
collector alone.
"""

from __future__ import annotations

import copy
import gc
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neuraudio.runtime.precision import compact_rnn_weights, measure_precision
from neuraudio.runtime.step_graph import capture_step, replay_mismatch, restore_into
from neuraudio.stream.knobs import glide_coefficient, glide_into
from neuraudio.stream.processor import Processor, Stream, cast_state, stream_latency

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Lower precision is accepted only when the output stays within this ESR of float32 on a test signal.
LOW_PRECISION_ESR = 1e-3
# A lower precision that takes this much longer than float32 on the CPU warns (a margin for timing noise).
SLOWER = 1.1
TIMING_WINDOW = 8192  # per-block compute times kept for the statistics (a ring)


class EngineError(RuntimeError):
    """The engine cannot run as asked (one sentence saying why)."""


@dataclass(frozen=True)
class EngineStats:
    """Per-block compute time of ``process`` since ``prepare`` or ``reset_stats`` (the last 8192 blocks for the
    percentiles), in milliseconds, against the real-time budget ``block_size / sample_rate``."""

    blocks: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    budget_ms: float
    overruns: int
    nonfinite_blocks: int

    @property
    def p99_share(self) -> float:
        """p99 as a fraction of the budget."""
        return self.p99_ms / self.budget_ms


class Engine:
    """Runs a :class:`Processor` for a real-time host.

    Args:
        model: any neuraudio model; the engine runs its own copy (on ``device``, in ``dtype``, in eval mode).
        sample_rate: the host's rate in Hz; it must equal the model's (real-time resampling is not supported yet).
        block_size: the largest block the host will pass.
        channels: channels of the host's blocks (a mono model processes each independently).
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
        dtype: ``float32``, ``float16`` or ``bfloat16`` (a torch dtype or its name); lower precision is refused
            unless the output stays within ESR 1e-3 of float32 on a test signal at several knob settings
            (measured in ``prepare``); on the CPU, one that runs slower than float32 warns.
        cuda_graph: capture the model step as a CUDA graph on CUDA (default); ``False`` runs eagerly.
        threads: torch CPU threads on the thread that calls ``process`` (``None``: leave torch's setting).
        block_multiple: the host promises blocks whose length is a multiple of this (a multiple of the model's
            hop): a model with a hop then reports ``hop - 1`` samples less latency.
        freeze_gc: collect and freeze the garbage collector's objects in ``prepare`` (module docstring).
    """

    def __init__(self, model: Processor, sample_rate: int, block_size: int = 512, channels: int = 1,
                 device: str | torch.device = "cpu", dtype: torch.dtype | str = torch.float32,
                 cuda_graph: bool = True, threads: int | None = 1, block_multiple: int | None = None,
                 freeze_gc: bool = True):
        if not isinstance(model, Processor):
            raise EngineError(f"the engine runs neuraudio Processors, got {type(model).__name__}.")
        if int(sample_rate) != model.sample_rate:
            raise EngineError(f"the host runs at {sample_rate} Hz but the model at {model.sample_rate} Hz; "
                              "real-time resampling is not supported, so run the host at the model's rate.")
        if block_size < 1:
            raise EngineError(f"block_size must be at least 1 sample, got {block_size}.")
        if channels < 1:
            raise EngineError(f"channels must be at least 1, got {channels}.")
        specs = model.input_channels()
        try:
            model.check_query()
            if len(specs) == 1:
                model.check_channels(channels)
        except ValueError as err:
            raise EngineError(str(err)) from None
        # channels per input, in call order: fixed by the model, or the host's count for inputs of any count
        self.input_shapes = {name: int(channels) if want is None else want for name, want in specs.items()}
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise EngineError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}.") from None
        # CPU threads for torch on the thread that calls process (None: leave torch's setting alone). Set once per
        # calling thread: a host's audio thread is not the one that called prepare, and a thread that never set
        # it can run far slower (an ad hoc timing: an LSTM-48 step took 9.3 ms instead of 0.22 ms on a new thread
        # after the process had used torch's thread pool; tests/test_runtime_engine.py's paced host loop caught it).
        self.threads = threads
        self._audio_thread = None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise EngineError("device 'cuda' was asked for but torch sees no CUDA GPU.")
        if self.device.type not in ("cpu", "cuda"):
            raise EngineError(f"device must be 'cpu' or 'cuda', got {device!r}.")
        self.dtype = DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
        if self.dtype not in DTYPES.values():
            raise EngineError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.")
        self.model = copy.deepcopy(model)  # the engine's own copy: moving it to a device or dtype leaves yours alone
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.channels = next(iter(self.input_shapes.values()))
        self.out_channels = model.output_channels(self.channels)
        self.out_shape = (len(model.stems), self.out_channels) if model.stems else (self.out_channels,)
        self.use_graph = bool(cuda_graph) and self.device.type == "cuda"
        if block_multiple is not None and (block_multiple < 1 or block_multiple % model.hop
                                           or self.block_size % block_multiple):
            raise EngineError(f"block_multiple must be a multiple of the model's hop {model.hop} that divides "
                              f"block_size {self.block_size}, got {block_multiple}.")
        self.block_multiple = block_multiple
        self.freeze_gc = bool(freeze_gc)  # freeze the garbage collector's objects in prepare (module docstring)
        # whole hops in every block: the step sees a fixed shape per full block, so it can be captured
        self.path = "direct" if model.hop == 1 or block_multiple else "stream"
        self.graph: torch.cuda.CUDAGraph | None = None
        self.fallback_reason: str | None = None
        self.precision_esr: float | None = None    # worst ESR of dtype against float32 (prepare measures it)
        self.precision_speed: float | None = None  # offline time of dtype over float32's
        self.prepared = False
        self._targets = model.knob_defaults()
        self._current = dict(self._targets)
        self._started = False
        self._budget_ms = 1e3 * self.block_size / self.sample_rate

    @property
    def _dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    # ---- host-facing facts ------------------------------------------------------------------------------------
    @property
    def latency(self) -> int:
        """The delay in samples a host compensates: the model's latency plus the engine's buffering."""
        return stream_latency(self.model, self.block_multiple)

    @property
    def knobs(self) -> dict[str, float]:
        """The knob targets last set."""
        return dict(self._targets)

    def stats(self) -> EngineStats:
        """Compute-time statistics; safe to call from any thread while the audio thread runs (no lock: a reading
        may miss the block in flight)."""
        count = self._blocks
        window = self._times[: min(count, TIMING_WINDOW)].copy()
        if not len(window):
            return EngineStats(count, 0.0, 0.0, 0.0, self._budget_ms, self._overruns, self._nonfinite)
        p50, p99 = np.percentile(window, [50, 99])
        return EngineStats(count, float(p50), float(p99), float(self._max_ms), self._budget_ms, self._overruns,
                           self._nonfinite)

    def reset_stats(self) -> None:
        self._times[:] = 0.0
        self._blocks = self._overruns = self._nonfinite = 0
        self._max_ms = 0.0

    def _adopt_thread(self) -> None:
        """First block on a new calling thread: its torch thread count and, on the CPU, denormal flushing (the
        floating-point control register is per thread)."""
        if self.device.type == "cpu":
            if self.threads is not None:
                torch.set_num_threads(self.threads)
            torch.set_flush_denormal(True)
        self._audio_thread = threading.get_ident()

    # ---- life cycle ---------------------------------------------------------------------------------------------
    def prepare(self) -> "Engine":
        """Allocate every buffer, check the precision, capture the CUDA graph and warm up. Call it off the audio
        thread, before the first ``process`` (and again after changing nothing: it is idempotent)."""
        if self.prepared:
            return self
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)
        model = self.model.eval().to(self.device)
        compact_rnn_weights(model)
        if self.device.type == "cuda" and self.dtype == torch.float32:
            # cuDNN convolutions default to TF32 (10-bit mantissas): a TCN's graph step and its offline pass then
            # differed by 3e-4 on an H100. float32 means float32; process-wide, like denormal flushing on the CPU.
            torch.backends.cudnn.allow_tf32 = False
        if self.dtype != torch.float32:
            self._check_precision()
            model.to(self.dtype)
            compact_rnn_weights(model)
        n_knobs, size = len(model.knobs), self.block_size
        pin = self.device.type == "cuda"
        self._host_in = [torch.zeros(ch, size, pin_memory=pin) for ch in self.input_shapes.values()]
        self._host_out = torch.zeros(*self.out_shape, size, pin_memory=pin)
        self._host_out_np = self._host_out.numpy()
        self._x = [torch.zeros(ch, size, device=self.device, dtype=self.dtype) for ch in self.input_shapes.values()]
        self._knob_rows = torch.zeros(n_knobs, size, dtype=torch.float64)
        self._knob_host = torch.zeros(n_knobs, size, pin_memory=pin)
        self._knob_dev = torch.zeros(n_knobs, size, device=self.device, dtype=self.dtype)
        self._coefficient = glide_coefficient(model.knob_time_constant_ms, model.sample_rate)
        self._powers = self._coefficient ** torch.arange(1, size + 1, dtype=torch.float64)
        self._current = dict(self._targets)
        self._started = False
        self._times = np.zeros(TIMING_WINDOW)
        self.reset_stats()
        if self.path == "direct":
            self._state = model.init_state(self.channels, size, self.device)
            self._state = self._cast_state(self._state)
            self._y = torch.zeros(*self.out_shape, size, device=self.device, dtype=self.dtype)
            if self.use_graph:
                self._capture()
        else:
            self._stream = Stream(model, size, self.device, self.channels, self.block_multiple)
            self._stream.set_knobs(**self._targets)
        self._warm_up()
        if self.freeze_gc:  # no full collection of everything in the audio callback (module docstring)
            gc.collect()
            gc.freeze()
        self.prepared = True
        return self

    def reset(self) -> None:
        """Clear all audio state (as after ``prepare``); keep the knob values and the statistics."""
        self._require_prepared()
        self._current = dict(self._targets)
        self._started = False
        if self.path == "direct":
            fresh = self._cast_state(self.model.init_state(self.channels, self.block_size, self.device))
            if self.graph is not None:
                with torch.inference_mode():  # steps ran in inference mode, so the state may hold inference tensors
                    restore_into(self._state, fresh)  # in place: the graph keeps pointing at the same tensors
            else:
                self._state = fresh
        else:
            self._stream.reset()

    def set_knobs(self, **values: float) -> None:
        """Set knob targets from any thread; they apply at the next block boundary and glide (the first values
        set before any audio apply at once). Out-of-range values raise ``ValueError`` here, never in ``process``."""
        targets = self.model.updated_knobs(self._targets, values)
        if not self._started:
            self._current = dict(targets)
        self._targets = targets  # one reference swap: atomic for the audio thread
        if self.prepared and self.path == "stream":
            self._stream.set_knobs(**values)

    # ---- the audio callback -----------------------------------------------------------------------------------
    def process(self, *blocks: np.ndarray | torch.Tensor, out: np.ndarray | torch.Tensor | None = None):
        """Process one host block per model input, each ``(channels, n)`` with the same ``n <= block_size``;
        returns ``(out_channels, n)`` (``(stems, out_channels, n)`` for a model with stems) of the same kind as the
        first block (numpy float32 or a torch tensor on the CPU), or ``out`` filled in."""
        start = time.perf_counter()
        if threading.get_ident() != self._audio_thread:
            self._adopt_thread()
        n = blocks[0].shape[-1] if blocks else 0
        if len(blocks) != len(self.input_shapes) or any(
                b.ndim != 2 or b.shape != (ch, n) for b, ch in zip(blocks, self.input_shapes.values())) \
                or n > self.block_size:
            if len(self.input_shapes) == 1:
                raise EngineError(f"a block must be shaped ({self.channels}, n <= {self.block_size}), got "
                                  f"{', '.join(str(tuple(b.shape)) for b in blocks) or 'no block'}.")
            shapes = ", ".join(f"{name} ({ch}, n)" for name, ch in self.input_shapes.items())
            raise EngineError(f"process takes one block per input, {shapes} with the same n <= {self.block_size}, "
                              f"got {[tuple(b.shape) for b in blocks]}.")
        if self.block_multiple and n % self.block_multiple:
            raise EngineError(f"a block of {n} samples is not a multiple of block_multiple {self.block_multiple}, as "
                              "this engine's host promised.")
        self._require_prepared()
        is_numpy = isinstance(blocks[0], np.ndarray)
        finite = True
        for host, block in zip(self._host_in, blocks):
            host = host[:, :n]
            host.copy_(torch.from_numpy(block) if isinstance(block, np.ndarray) else block)
            finite = finite and bool(torch.isfinite(host).all())
        if n:
            if finite:
                self._run(n)
            else:
                self._host_out[..., :n].zero_()
                self._nonfinite += 1
                self.reset()
        result = self._host_out_np[..., :n] if is_numpy else self._host_out[..., :n]
        if out is not None:
            out[..., :n] = result
            result = out
        elapsed_ms = (time.perf_counter() - start) * 1e3
        self._times[self._blocks % TIMING_WINDOW] = elapsed_ms
        self._blocks += 1
        self._max_ms = max(self._max_ms, elapsed_ms)
        if elapsed_ms > self._budget_ms:
            self._overruns += 1
        return result

    # ---- internals ----------------------------------------------------------------------------------------------
    def _require_prepared(self) -> None:
        if not self.prepared:
            raise EngineError("call prepare() before process() or reset().")

    @torch.inference_mode()
    def _run(self, n: int) -> None:
        if self.path == "stream":
            self._host_out[..., :n].copy_(self._stream.process(*(host[:, :n] for host in self._host_in)))
            return
        self._fill_knobs(n)
        full = n == self.block_size
        xs, knobs = [x[:, :n] for x in self._x], self._knob_dev[:, :n]
        for x, host in zip(xs, self._host_in):
            x.copy_(host[:, :n], non_blocking=True)
        if self.model.knobs:
            knobs.copy_(self._knob_host[:, :n], non_blocking=True)
        if full and self.graph is not None:
            self.graph.replay()
            y = self._y
        else:
            y = self._step(xs, knobs)
        self._host_out[..., :n].copy_(y[..., :n])  # synchronous: the host needs the samples now

    def _step(self, xs: list[torch.Tensor], knobs: torch.Tensor) -> torch.Tensor:
        x = xs[0] if len(xs) == 1 else tuple(xs)
        named = {name: knobs[i] for i, name in enumerate(self.model.knobs)}
        state = self._state
        tensors = self._state_tensors(state)
        if tensors is None:  # not a list of tensors (e.g. numpy arrays of a DSP model): the model updates it
            return self.model.step(x, state, named)
        work = list(tensors)
        y = self.model.step(x, work, named)
        for held, new in zip(tensors, work):
            if new is not held:
                held.copy_(new)
        return y

    def _fill_knobs(self, n: int) -> None:
        """Per-sample knob values of this block: the same closed-form glide as ``Stream`` (float64), no allocation
        beyond small temporaries."""
        if not self.model.knobs:
            return
        targets = self._targets
        self._started = True
        for i, name in enumerate(self.model.knobs):
            self._current[name] = glide_into(self._knob_rows[i, :n], self._current[name], targets[name], self._powers)
        self._knob_host[:, :n].copy_(self._knob_rows[:, :n])

    @staticmethod
    def _state_tensors(state: Any) -> list[torch.Tensor] | None:
        if isinstance(state, list) and all(torch.is_tensor(s) for s in state):
            return state
        return None

    def _cast_state(self, state: Any) -> Any:
        return cast_state(state, self.dtype)

    def _capture(self) -> None:
        """Capture one full-block step as a CUDA graph and check it against eager steps (``step_graph``); on
        failure keep eager execution and say why in ``fallback_reason``."""
        try:
            self.graph, self._y = capture_step(lambda: self._step(self._x, self._knob_dev), self.device,
                                               self._restore_state)
            self._restore_state()
            fresh = self._cast_state(self.model.init_state(self.channels, self.block_size, self.device))
            reason = replay_mismatch(self.graph, self._y, self._x, lambda: self._eager_step_on(fresh))
        except Exception as err:  # noqa: BLE001 - any capture failure means: run eagerly, and report it
            reason = f"CUDA graph capture failed ({type(err).__name__}: {err})"
        if reason:
            self.graph = None
            self.fallback_reason = f"{reason}; running eagerly"
            self._y = torch.zeros(*self.out_shape, self.block_size, device=self.device, dtype=self.dtype)
            self._state = self._cast_state(self.model.init_state(self.channels, self.block_size, self.device))
        else:
            self._restore_state()

    def _eager_step_on(self, state: Any) -> torch.Tensor:
        """One eager step on the current inputs with ``state`` (updated) instead of the engine's own."""
        held, self._state = self._state, state
        try:
            return self._step(self._x, self._knob_dev)
        finally:
            self._state = held

    @torch.inference_mode()  # steps ran in inference mode, so the state may hold inference tensors
    def _restore_state(self) -> None:
        """Return the state to rest in place (the CUDA graph keeps pointing at the same tensors)."""
        restore_into(self._state, self._cast_state(self.model.init_state(self.channels, self.block_size,
                                                                           self.device)))

    def _warm_up(self) -> None:
        """Run a few silent blocks (allocator pools, kernels, lazy initialisation), then return to rest."""
        self.prepared = True
        silence = [torch.zeros(ch, self.block_size) for ch in self.input_shapes.values()]
        for _ in range(8):
            self.process(*silence)
        self.reset()
        self.reset_stats()

    def _check_precision(self) -> None:
        """Refuse ``self.dtype`` if it changes the output by more than ESR 1e-3 against float32 (see
        :func:`neuraudio.runtime.precision.measure_precision`); warn if it is slower on the CPU."""
        try:
            self.precision_esr, self.precision_speed = measure_precision(self.model, self.dtype, self.channels,
                                                                         self.device)
        except (RuntimeError, ValueError) as err:
            raise EngineError(f"{self._dtype_name} is not supported for this model on {self.device.type} "
                              f"({str(err).splitlines()[0]}).") from None
        if not self.precision_esr <= LOW_PRECISION_ESR:
            raise EngineError(f"{self._dtype_name} changes this model's output by ESR {self.precision_esr:.2e} against "
                              f"float32 (worst over the knob settings of a test signal), more than the "
                              f"{LOW_PRECISION_ESR:g} the engine accepts; use float32.")
        if self.device.type == "cpu" and self.precision_speed > SLOWER:
            warnings.warn(f"{self._dtype_name} ran {self.precision_speed:.2f}x as long as float32 for this model on the "
                          "CPU (offline, on the precision test signal); float32 is faster here.", stacklevel=3)
