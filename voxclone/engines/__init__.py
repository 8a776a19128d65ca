"""Speech engines behind one interface (`Engine`), and the set a server runs with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Engine, StockVoice, VoiceSpec

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["Engine", "StockVoice", "VoiceSpec", "build_engines", "engine_for_file"]


def build_engines(settings: Settings) -> dict[str, Engine]:
    """Kokoro always; Piper when its package is installed. Nothing is loaded yet."""
    from .kokoro import KokoroEngine

    kokoro = KokoroEngine(settings.models_dir, settings.onnx_threads, settings.kokoro_runtime, settings.model_cache_dir)
    engines: dict[str, Engine] = {"kokoro": kokoro}
    try:
        import piper  # noqa: F401
    except ImportError:
        return engines
    from .piper import PiperEngine

    engines["piper"] = PiperEngine(settings.onnx_threads)
    return engines


def engine_for_file(suffix: str) -> str | None:
    """Which engine reads a voice model file on disk, by its extension."""
    return {".npy": "kokoro", ".pt": "kokoro", ".onnx": "piper"}.get(suffix.lower())
