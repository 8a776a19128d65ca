"""A tone engine: each character of the text becomes a short tone at its own pitch.

Its "model" is a few-KB numpy file (`*.tone.npz`: an alphabet, one frequency per character, a sample
rate and a duration per character), made by tests/make_tone_model.py. It speaks nothing a person
would call speech, instantly and deterministically, with exact word timings and its own sample rate,
so the API, cache, streaming, WebSocket and CLI can be tested in seconds without a real model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput
from ..settings import Settings
from .base import AudioChunk, Capabilities, Engine, SpeakOptions, StockVoice, VoiceSpec, WordTiming

SUFFIX = ".tone.npz"
_FADE_S = 0.005


class ToneModel:
    """The contents of a `.tone.npz` file."""

    def __init__(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                alphabet = str(data["alphabet"])
                frequencies = np.asarray(data["frequencies"], np.float32)
                self.sample_rate = int(data["sample_rate"])
                self.seconds_per_char = float(data["seconds_per_char"])
        except (OSError, KeyError, ValueError) as e:
            raise BadInput(f"{path.name} is not a tone model: {e}") from e
        if len(alphabet) != len(frequencies) or not 4000 <= self.sample_rate <= 48_000 or self.seconds_per_char <= 0:
            raise BadInput(f"{path.name} is not a tone model: inconsistent alphabet, rate or duration")
        self.pitch = dict(zip(alphabet, frequencies.tolist(), strict=True))

    def render(self, text: str, speed: float) -> tuple[np.ndarray, tuple[WordTiming, ...]]:
        step = max(1, round(self.seconds_per_char / speed * self.sample_rate))
        t = np.arange(step) / self.sample_rate
        fade = np.minimum(1.0, np.minimum(t, t[::-1]) / _FADE_S)
        tones = [
            (0.3 * np.sin(2 * np.pi * self.pitch[c] * t) * fade) if c in self.pitch else np.zeros(step)
            for c in text.lower()
        ]
        audio = np.concatenate(tones).astype(np.float32) if tones else np.zeros(0, np.float32)
        words, start = [], 0
        for word in text.split(" "):
            if word:
                words.append(
                    WordTiming(word, start * step / self.sample_rate, (start + len(word)) * step / self.sample_rate)
                )
            start += len(word) + 1
        return audio, tuple(words)


@lru_cache(maxsize=16)
def _model(path: Path, stamp: float) -> ToneModel:  # stamp: a rewritten file is read again
    return ToneModel(path)


class ToneEngine(Engine):
    """Voices made from `.tone.npz` files on disk (VOXCLONE_EXTRA_VOICE_PATHS); no stock voices."""

    name = "tone"
    title = "Tone (test engine)"
    capabilities = Capabilities(word_timings=True, voice_files=(SUFFIX,))

    @classmethod
    def from_settings(cls, settings: Settings) -> ToneEngine:
        return cls()

    def stock_voices(self) -> list[StockVoice]:
        return []

    def voice_from_file(self, path: Path) -> dict[str, Any] | None:
        return {"model": str(path.resolve())} if path.name.endswith(SUFFIX) else None

    def _tone_model(self, params: Mapping[str, Any], files_dir: Path | None) -> ToneModel:
        if "model" not in params:
            raise BadInput("a tone voice needs 'model' (a .tone.npz file)")
        path = VoiceSpec("", 0, params, files_dir).path(str(params["model"]))
        if not path.is_file():
            raise BadInput(f"tone model not found: {path}")
        return _model(path, path.stat().st_mtime)

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        self._tone_model(params, files_dir)

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        model = self._tone_model(voice.params, voice.files_dir)
        audio, words = model.render(text, options.speed)
        yield AudioChunk(audio, model.sample_rate, text, words)
