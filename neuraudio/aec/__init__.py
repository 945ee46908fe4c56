"""Acoustic echo cancellation: the classical linear canceller (``aec-linear``); neural suppressors to come."""

from neuraudio.aec.linear import LinearAEC

__all__ = ["LinearAEC"]
