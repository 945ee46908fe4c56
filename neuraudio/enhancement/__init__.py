"""Speech enhancement: the classical reference (``denoise-mmse``); magnitude + explicit-phase neural models to come."""

from neuraudio.enhancement.mmse import LogMMSE, exp1

__all__ = ["LogMMSE", "exp1"]
