"""Vocoding: mel -> audio (the classical reference, Griffin-Lim; amplitude/phase neural vocoders to come) and the
phase vocoder (time-stretching, streaming pitch shifting)."""

from neuraudio.vocoding.griffin_lim import GriffinLim, griffin_lim, mel_to_magnitude
from neuraudio.vocoding.phase_vocoder import time_stretch
from neuraudio.vocoding.pitch_shift import PitchShift

__all__ = ["GriffinLim", "PitchShift", "griffin_lim", "mel_to_magnitude", "time_stretch"]
