"""Real-time engine for plugin hosts (depends on ``neuraudio.stream`` only)."""

from neuraudio.runtime.engine import Engine, EngineError, EngineStats
from neuraudio.runtime.realtime import prepare_audio_thread, release_audio_thread

__all__ = ["Engine", "EngineError", "EngineStats", "prepare_audio_thread", "release_audio_thread"]
