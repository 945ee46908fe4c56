"""neuraudio: neural audio signal processing on one streaming STFT/waveform backend.

    >>> import neuraudio
    >>> model = neuraudio.load("spectral-gate")
    >>> audio, rate = neuraudio.read_audio("in.wav", sample_rate=model.sample_rate)
    >>> y = model.process(audio, threshold_db=-55.0)
"""

__version__ = "0.1.0"

from neuraudio.api import FileReport, process_file, process_files
from neuraudio.audio import AudioError, audio_info, read_audio, write_audio
from neuraudio.hub import ModelError, list_models, load
from neuraudio.runtime import Engine, EngineError

__all__ = [
    "AudioError", "Engine", "EngineError", "FileReport", "ModelError", "audio_info", "list_models", "load", "process_file", "process_files", "read_audio",
    "write_audio", "__version__",
]
