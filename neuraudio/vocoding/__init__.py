"""Vocoding: mel -> audio (the classical reference, Griffin-Lim; amplitude/phase neural vocoders to come) and the
phase vocoder (time-stretching)."""

from neuraudio.vocoding.griffin_lim import GriffinLim, griffin_lim, mel_to_magnitude
from neuraudio.vocoding.phase_vocoder import time_stretch

__all__ = ["GriffinLim", "griffin_lim", "mel_to_magnitude", "time_stretch"]
