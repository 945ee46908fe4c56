"""The Processor contract every neuraudio model implements, and the Stream that runs it block by block.

A :class:`Processor` is an ``nn.Module`` with a fixed ``hop`` (samples per model step). Subclasses implement three
things, all causal and all working on whole hops:

* ``forward(x, knobs)``: the batched offline core. ``x`` is ``(..., channels, time)`` with ``time`` a multiple of
  ``hop``; ``knobs`` maps each knob name to a per-sample tensor ``(..., time)`` (leading dims broadcast against
  ``x``'s batch dims). Returns ``(..., out_channels, time)`` delayed by ``step_latency`` samples.
* ``init_state(channels, max_samples, device)``: the streaming state of one stream (an object the stream owns),
  allocated for steps of at most ``max_samples`` samples.
* ``step(x, state, knobs)``: the same computation on the next whole hops of a stream, updating ``state``.

From those the base class derives the public face of ARCHITECTURE.md:

* ``process(*inputs, **knobs)``: whole signals in (one per ``inputs``), whole signal out (with a stems axis for a
  model with ``stems``), aligned (latency removed);
* ``stream(block_size, device, channels, block_multiple)``: a :class:`Stream` taking host blocks of any length
  ``0..block_size``;
* ``latency``: the delay when fed whole hops; ``Stream.latency`` adds the ``hop - 1`` samples a partly filled hop
  waits (unless the host promises whole hops), the constant delay that lets ``n`` samples out follow every ``n`` in.

Knobs glide (:mod:`neuraudio.stream.knobs`, shared with the Engine): the trajectory depends only on the sample index
at which a value was set, never on block sizes, so :func:`knob_trajectory` rebuilds it for offline processing.
Non-causal models derive from :class:`neuraudio.stream.chunked.ChunkedProcessor`.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from neuraudio.stream.framing import SampleQueue
from neuraudio.stream.knobs import Knob, KnobValue, glide, glide_coefficient, knob_trajectory

__all__ = ["Knob", "KnobValue", "Processor", "Stream", "cast_state", "glide", "glide_coefficient", "knob_trajectory",
           "parameter_dtype", "stream_latency"]


class Processor(nn.Module):
    """Base class of every neuraudio model (see the module docstring for the contract).

    Class attributes a subclass sets: ``task`` (its family, e.g. ``"effect"``); ``inputs`` (name -> channel count,
    in call order: ``{"x": None}`` for one input of any channel count, each channel processed independently;
    ``{"mic": 1, "ref": 1}`` for an echo canceller); ``stems`` (``("harmonic", "percussive")`` for a separator:
    outputs gain a stems axis before the channels); ``in_channels`` / ``out_channels`` (a single-input model with a
    fixed channel count sets ``in_channels``; a model with several inputs or a fixed count sets ``out_channels``);
    ``knobs`` (name -> :class:`Knob`).

    With several inputs, ``forward`` and ``step`` receive them as a tuple in ``inputs`` order in place of ``x``.
    Instance attributes: ``sample_rate`` (Hz), ``hop`` (samples per step).
    """

    task: str | None = None  # the family a model serves ("effect", ...): what `neuraudio eval TASK` accepts
    inputs: Mapping[str, int | None] = {"x": None}  # name -> channel count (None: any, each processed alone)
    stems: tuple[str, ...] = ()  # named outputs: output (..., stems, channels, time); () for one output
    context: int | None = None  # non-causal models (ChunkedProcessor): samples of audio they see on each side
    takes_query: bool = False  # query-bound models: told what to do by an example clip (``with_query``)
    in_channels: int = 1
    out_channels: int = 1
    knobs: Mapping[str, Knob] = {}
    knob_time_constant_ms: float = 20.0

    def __init_subclass__(cls, **kwargs):
        """Record the arguments of the outermost constructor call, so a model can be saved as class + kwargs."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            outermost = "_config_kwargs" not in self.__dict__
            if outermost:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                arguments = dict(bound.arguments)
                arguments.pop("self")
                object.__setattr__(self, "_config_kwargs", arguments)
            init(self, *args, **kw)

        cls.__init__ = recording_init

    @property
    def config(self) -> dict[str, Any]:
        """``{"class": "module:Name", "kwargs": {...}}``: what rebuilds this model (weights aside)."""
        cls = type(self)
        return {"class": f"{cls.__module__}:{cls.__qualname__}", "kwargs": dict(self.__dict__["_config_kwargs"])}

    def __init__(self, sample_rate: int, hop: int):
        super().__init__()
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}.")
        if hop < 1:
            raise ValueError(f"hop must be at least 1 sample, got {hop}.")
        self.sample_rate = int(sample_rate)
        self.hop = int(hop)

    # ---- what a subclass implements -------------------------------------------------------------------------
    @property
    def step_latency(self) -> int:
        """Delay in samples of ``forward``/``step`` output relative to their input, when fed whole hops."""
        return 0

    def forward(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def init_state(self, channels: int, max_samples: int, device: torch.device) -> Any:
        """Fresh streaming state for ``channels`` channels; ``step`` will get at most ``max_samples`` at a time."""
        raise NotImplementedError

    def step(self, x: torch.Tensor, state: Any, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def bind_query(self, clip: torch.Tensor) -> None:
        """Query-bound models: take ``clip`` (``(channels, time)`` at ``sample_rate``, on the model's device and
        dtype) as the query, e.g. by storing its embedding in a buffer. Called by :meth:`with_query` on a copy."""
        raise NotImplementedError

    # ---- the public face ------------------------------------------------------------------------------------
    def with_query(self, clip: torch.Tensor, sample_rate: int | None = None) -> "Processor":
        """A copy of this query-bound model told what to extract (or match) by an example ``clip``, ``(time,)`` or
        ``(channels, time)``, at ``sample_rate`` (default: the model's; another rate is resampled). The copy is a
        plain Processor: ``process``, ``stream``, the Engine and the files commands take it; this model is left
        unbound."""
        if not self.takes_query:
            raise ValueError(f"{type(self).__name__} takes no query clip; with_query is for query-bound models.")
        clip = torch.as_tensor(clip)
        if clip.ndim == 1:
            clip = clip[None]
        if clip.ndim != 2 or clip.shape[-1] == 0 or not clip.is_floating_point() or not torch.isfinite(clip).all():
            raise ValueError(f"a query clip must be a non-empty finite float signal shaped (time,) or (channels, "
                             f"time), got {tuple(clip.shape)} {clip.dtype}.")
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            from neuraudio.audio import resample

            clip = resample(clip.float(), int(sample_rate), self.sample_rate)
        bound = copy.deepcopy(self)
        with torch.no_grad():
            bound.bind_query(clip.to(device=_device_of(self), dtype=parameter_dtype(self)))
        bound._query_bound = True
        return bound

    def check_query(self) -> None:
        """Refuse to run a query-bound model that has no query yet, with the sentence that says what to do."""
        if self.takes_query and not getattr(self, "_query_bound", False):
            raise ValueError(f"{type(self).__name__} needs a query clip first: model = model.with_query(clip).")

    @property
    def latency(self) -> int:
        """Algorithmic delay in samples when fed whole hops (``process`` removes it)."""
        return self.step_latency

    def input_channels(self) -> dict[str, int | None]:
        """Each input's channel count (``None``: any), in call order."""
        if len(self.inputs) == 1 and self.in_channels != 1:
            return {next(iter(self.inputs)): self.in_channels}
        return dict(self.inputs)

    def output_channels(self, channels: int | None = None) -> int:
        """Channels of the output for a single-input model fed ``channels`` (a model of any channel count keeps them)."""
        specs = self.input_channels()
        if len(specs) == 1 and next(iter(specs.values())) is None:
            if channels is None:
                raise ValueError("a model of any channel count needs the channel count of its input.")
            return channels
        return self.out_channels

    def check_channels(self, channels: int, name: str | None = None) -> None:
        specs = self.input_channels()
        name = name or next(iter(specs))
        want = specs[name]
        if want is not None and channels != want:
            where = f" on input {name!r}" if len(specs) > 1 else ""
            raise ValueError(f"{type(self).__name__} takes {want} channels{where}, got {channels}.")

    def check_inputs(self, inputs: Sequence[torch.Tensor]) -> None:
        """Count, type, channels and length of ``process`` inputs, each ``(..., channels, time)``."""
        specs = self.input_channels()
        if len(inputs) != len(specs):
            raise ValueError(f"{type(self).__name__} takes {len(specs)} input(s) ({', '.join(specs)}), "
                             f"got {len(inputs)}.")
        for name, x in zip(specs, inputs):
            if not torch.is_tensor(x) or not x.is_floating_point() or x.ndim < 2:
                raise ValueError(f"input {name} must be a float tensor shaped (..., channels, time).")
            self.check_channels(x.shape[-2], name)
        lengths = {x.shape[-1] for x in inputs}
        if len(lengths) > 1:
            raise ValueError(f"the inputs ({', '.join(specs)}) must have the same length, got {sorted(lengths)}.")

    def knob_defaults(self) -> dict[str, float]:
        return {name: spec.default for name, spec in self.knobs.items()}

    def check_knob_names(self, names) -> None:
        unknown = sorted(set(names) - set(self.knobs))
        if unknown:
            allowed = ", ".join(self.knobs) or "none"
            raise ValueError(f"unknown knob(s) {', '.join(unknown)} for {type(self).__name__}; knobs: {allowed}.")

    def updated_knobs(self, targets: Mapping[str, float], values: Mapping[str, float]) -> dict[str, float]:
        """A new targets dict: ``targets`` with ``values`` checked (names and ranges) and applied."""
        self.check_knob_names(values)
        updated = dict(targets)
        for name, value in values.items():
            updated[name] = self.knobs[name].check(name, value)
        return updated

    def process(self, *inputs: torch.Tensor, **knobs: KnobValue) -> torch.Tensor:
        """Process whole signals offline.

        Args:
            *inputs: one ``(..., channels, time)`` float tensor per input (``model.inputs``, in order; most models
                take one, ``x``), at ``sample_rate``, all of the same length.
            **knobs: each a number or a per-sample tensor ``(time,)`` / ``(..., time)`` (automation); missing knobs
                take their default.

        Returns:
            ``(..., out_channels, time)``, or ``(..., stems, out_channels, time)`` for a model with stems, aligned
            with the inputs (the latency is removed).

        Autograd records the call only in training mode (``model.train()``, as a training loop sets it): a loaded
        model is in eval mode, so inference keeps no graph (benchmarks/process_memory.py: klon-centaur over 120 s of
        audio peaked at 7.58 GB of RSS and took 24.3 s with one, 2.41 GB and 8.6 s without) and the output converts
        with ``.numpy()``.
        """
        self.check_query()
        self.check_inputs(inputs)
        self.check_knob_names(knobs)
        x = inputs[0]
        length, lat = x.shape[-1], self.latency
        padded = -(-(length + lat) // self.hop) * self.hop
        xp = tuple(nn.functional.pad(i, (0, padded - length)) for i in inputs)
        per_sample = {}
        for name, spec in self.knobs.items():
            value = knobs.get(name, spec.default)
            if torch.is_tensor(value):
                if value.shape[-1] != length:
                    raise ValueError(f"knob {name} has {value.shape[-1]} values for a signal of {length} samples.")
                lo, hi = float(value.min()), float(value.max())
                spec.check(name, lo), spec.check(name, hi)
                value = value.to(device=x.device, dtype=x.dtype)
                tail = value[..., -1:].expand(*value.shape[:-1], padded - length)
                per_sample[name] = torch.cat([value, tail], dim=-1)
            else:
                per_sample[name] = torch.full((padded,), spec.check(name, value), device=x.device, dtype=x.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.training):
            y = self(xp[0] if len(xp) == 1 else xp, per_sample)
        return y[..., lat : lat + length]

    def stream(self, block_size: int = 512, device="cpu", channels: int | None = None,
               block_multiple: int | None = None) -> "Stream":
        """A :class:`Stream` for host blocks of up to ``block_size`` samples of ``channels`` channels (for inputs
        of any channel count); ``block_multiple``: the host promises blocks whose length is a multiple of it (a
        multiple of ``hop``), for a latency ``hop - 1`` samples lower."""
        return Stream(self, block_size, device, channels, block_multiple)


def stream_latency(model: "Processor", block_multiple: int | None = None) -> int:
    """The one latency rule of a stream (``Stream`` and ``Engine`` both use it): the model's latency, plus the
    ``hop - 1`` samples a partly filled hop waits when blocks of any length arrive; none when the host promises
    blocks of whole hops (``block_multiple``), and none for a hop of one sample."""
    return model.latency + (0 if block_multiple else model.hop - 1)


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def parameter_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of a model's parameters and buffers (float32 for a model without any)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def cast_state(state: Any, dtype: torch.dtype) -> Any:
    """A streaming state with its floating tensors in ``dtype`` (a state that is not a list of tensors is kept)."""
    if not (isinstance(state, list) and all(torch.is_tensor(s) for s in state)) or dtype == torch.float32:
        return state
    return [s.to(dtype) if s.is_floating_point() else s for s in state]


class Stream:
    """Runs a :class:`Processor` on host blocks of any length ``0 <= n <= block_size``: ``n`` samples in, ``n`` out.

    Buffers are allocated once here (like JUCE's ``prepareToPlay``), in the dtype of the model's parameters (a model
    moved to ``bfloat16`` streams in ``bfloat16``). ``set_knobs`` may be called from another thread: it swaps in a
    new dict, which the audio thread picks up at its next block.

    Args:
        block_size: the largest block the host will pass.
        channels: channels of the inputs whose count the model leaves open (default 1).
        block_multiple: the host promises blocks whose length is a multiple of this (itself a multiple of the
            model's hop); the stream then needs no partly filled hop, and its latency is ``hop - 1`` lower.

    Shape:
        ``process(*blocks)``: one ``(channels, n)`` block per input -> ``(out_channels, n)``, or
        ``(stems, out_channels, n)`` for a model with stems (``out_channels = channels`` for a mono model).
    """

    def __init__(self, model: Processor, block_size: int, device="cpu", channels: int | None = None,
                 block_multiple: int | None = None):
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}.")
        model.check_query()
        hop = model.hop
        if block_multiple is not None and (block_multiple < 1 or block_multiple % hop):
            raise ValueError(f"block_multiple must be a multiple of the model's hop {hop}, got {block_multiple}.")
        self.model = model
        self.block_size = int(block_size)
        self.block_multiple = block_multiple
        self.device = torch.device(device)
        specs = model.input_channels()
        if channels is not None and len(specs) == 1:
            model.check_channels(int(channels))
        # channels per input, in call order: fixed by the model, or the host's count for inputs of any count
        self.input_shapes = {name: int(channels or 1) if want is None else want for name, want in specs.items()}
        self.channels = next(iter(self.input_shapes.values()))
        out_ch = model.output_channels(self.channels)
        self.dtype = parameter_dtype(model)
        self._inputs = [SampleQueue((ch,), block_size + hop, self.device, self.dtype) for ch in self.input_shapes.values()]
        self._knob_queue = SampleQueue((len(model.knobs),), block_size + hop, self.device, self.dtype)
        # hop - 1 samples of silence make every n-in/n-out call possible, whatever the block pattern.
        self._wait = stream_latency(model, block_multiple) - model.latency
        lead = (len(model.stems), out_ch) if model.stems else (out_ch,)
        self._outputs = SampleQueue(lead, block_size + 2 * hop, self.device, self.dtype, prefill=self._wait)
        self._coefficient = glide_coefficient(model.knob_time_constant_ms, model.sample_rate)
        self._targets = model.knob_defaults()
        self._current = dict(self._targets)
        self._started = False
        self._max_step = (block_size + hop - 1) // hop * hop
        self._state = cast_state(model.init_state(self.channels, self._max_step, self.device), self.dtype)

    @property
    def latency(self) -> int:
        """Constant delay in samples between input and output of this stream: the model's latency, plus the
        ``hop - 1`` samples a partly filled hop waits unless the host promised whole hops (``block_multiple``)."""
        return stream_latency(self.model, self.block_multiple)

    @property
    def knobs(self) -> dict[str, float]:
        """The target knob values (what was last set)."""
        return dict(self._targets)

    def set_knobs(self, **values: float) -> None:
        """Set knob targets; before any audio they apply at once, afterwards they glide."""
        targets = self.model.updated_knobs(self._targets, values)
        if not self._started:
            self._current = dict(targets)
        self._targets = targets  # one reference swap: atomic for a reader on another thread

    def reset(self) -> None:
        """Clear all audio state (queues, model state); keep the knob values."""
        for queue in self._inputs:
            queue.reset()
        self._knob_queue.reset()
        self._outputs.reset()
        self._state = cast_state(self.model.init_state(self.channels, self._max_step, self.device), self.dtype)
        self._current = dict(self._targets)
        self._started = False

    def check_blocks(self, blocks: Sequence[torch.Tensor]) -> int:
        """The common length ``n`` of one block per input, after checking shapes and the block size."""
        if len(blocks) != len(self.input_shapes):
            names = ", ".join(self.input_shapes)
            raise ValueError(f"this stream takes {len(self.input_shapes)} block(s) per call ({names}), got {len(blocks)}.")
        n = blocks[0].shape[-1]
        for (name, channels), block in zip(self.input_shapes.items(), blocks):
            if block.ndim != 2 or block.shape[0] != channels or block.shape[-1] != n:
                raise ValueError(f"a block of {name} must be shaped ({channels}, {n}), got {tuple(block.shape)}.")
        if n > self.block_size:
            raise ValueError(f"a block of {n} samples exceeds this stream's block_size {self.block_size}.")
        if self.block_multiple and n % self.block_multiple:
            raise ValueError(f"a block of {n} samples is not a multiple of {self.block_multiple}, as this stream's "
                             "host promised.")
        return n

    @torch.no_grad()
    def process(self, *blocks: torch.Tensor) -> torch.Tensor:
        n = self.check_blocks(blocks)
        self._started = True
        targets = self._targets
        if self.model.knobs:
            rows = []
            for name in self.model.knobs:
                values, self._current[name] = glide(self._current[name], targets[name], n, self._coefficient)
                rows.append(values)
            self._knob_queue.push(torch.stack(rows).to(self.device, self.dtype))
        for queue, block in zip(self._inputs, blocks):
            queue.push(block.to(self.device, self.dtype))
        hop = self.model.hop
        whole = (self._inputs[0].count // hop) * hop
        if whole:
            xs = [queue.pop(whole) for queue in self._inputs]
            knob_rows = self._knob_queue.pop(whole) if self.model.knobs else None
            knobs = {name: knob_rows[i] for i, name in enumerate(self.model.knobs)} if self.model.knobs else {}
            self._outputs.push(self.model.step(xs[0] if len(xs) == 1 else tuple(xs), self._state, knobs))
        return self._outputs.pop(n)
