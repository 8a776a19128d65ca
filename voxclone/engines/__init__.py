"""Speech engines behind one contract (base.py), found through entry points (registry.py)."""

from __future__ import annotations

from .base import (
    READY,
    AudioChunk,
    Availability,
    Capabilities,
    Engine,
    RemoteEngine,
    SpeakOptions,
    StockVoice,
    VoiceSpec,
    WordTiming,
)
from .registry import Engines, build_engines

__all__ = [
    "READY",
    "AudioChunk",
    "Availability",
    "Capabilities",
    "Engine",
    "Engines",
    "RemoteEngine",
    "SpeakOptions",
    "StockVoice",
    "VoiceSpec",
    "WordTiming",
    "build_engines",
]
