"""Settings a host makes on its audio thread before the first block, for Python hosts.

A C++ plugin host runs its audio callback on a thread with real-time priority and never lets it touch the
allocator's slow paths. A Python host can get most of the way with :func:`prepare_audio_thread`, called once on the
audio thread after ``Engine.prepare()``:

* the garbage collector is frozen (every object alive now is moved out of its reach) and disabled, so no collection
  pass runs inside a callback (this is process-wide: other threads then rely on reference counting alone until
  :func:`release_audio_thread`);
* glibc's ``malloc`` keeps freed memory instead of returning it to the kernel (``M_TRIM_THRESHOLD``) and serves
  large blocks from the heap (``M_MMAP_THRESHOLD``), so a block's temporary tensors never fault fresh pages in;
* the thread is pinned to one CPU (``cpu``) and, where the process may (root or ``CAP_SYS_NICE``), scheduled
  ``SCHED_FIFO`` so that ordinary processes cannot preempt it.

Each step that cannot be made (another OS, no permission) is skipped and reported; nothing here raises.

    >>> engine = Engine(model, 48000, 128).prepare()
    >>> report = prepare_audio_thread(cpu=1)     # {"gc": "frozen", "malloc": "...", "affinity": ..., ...}
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
KEEP_BYTES = 512 * 1024 * 1024


def prepare_audio_thread(cpu: int | None = None, fifo_priority: int | None = 10) -> dict[str, str]:
    """Make the calling thread fit for real-time audio; returns what each step did, in words.

    Args:
        cpu: pin the thread to this CPU (``None``: leave the affinity alone).
        fifo_priority: ``SCHED_FIFO`` priority 1..99 (``None``: keep the normal scheduler).
    """
    report = {}
    gc.collect()
    gc.freeze()
    gc.disable()
    report["gc"] = "frozen and disabled"
    report["malloc"] = _keep_heap()
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
            report["affinity"] = f"cpu {cpu}"
        except (AttributeError, OSError, ValueError) as err:
            report["affinity"] = f"not set ({err})"
    if fifo_priority is not None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo_priority))
            report["scheduler"] = f"SCHED_FIFO {fifo_priority}"
        except (AttributeError, OSError) as err:
            report["scheduler"] = f"normal ({err.__class__.__name__}: {err})"
    return report


def release_audio_thread() -> None:
    """Undo the scheduler and the garbage-collector settings of :func:`prepare_audio_thread` (for tests and
    benchmarks that go on after the real-time part; the affinity and malloc settings stay)."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass
    gc.unfreeze()
    gc.enable()


def _keep_heap() -> str:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES) == 1 and libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES // 2) == 1
    except (OSError, AttributeError, TypeError):
        return "unchanged (no glibc mallopt)"
    return "heap kept (mallopt trim/mmap thresholds)" if ok else "unchanged (mallopt refused)"
