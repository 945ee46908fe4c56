"""Vocoding: mel -> audio. The classical reference (Griffin-Lim); amplitude/phase neural vocoders to come."""

from neuraudio.vocoding.griffin_lim import GriffinLim, griffin_lim, mel_to_magnitude

__all__ = ["GriffinLim", "griffin_lim", "mel_to_magnitude"]
