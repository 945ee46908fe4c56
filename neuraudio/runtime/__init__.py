"""Real-time engine for plugin hosts (depends on ``neuraudio.stream`` only)."""

from neuraudio.runtime.engine import Engine, EngineError, EngineStats

__all__ = ["Engine", "EngineError", "EngineStats"]
