"""Source separation: the classical harmonic/percussive reference (``hpss``); neural separators to come."""

from neuraudio.separation.hpss import HPSS

__all__ = ["HPSS"]
