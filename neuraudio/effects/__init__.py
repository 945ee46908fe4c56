"""Parameterized effects: neural models of gear with knobs, and reference DSP effects."""

from neuraudio.effects.spectral_gate import SpectralGate

__all__ = ["SpectralGate"]
