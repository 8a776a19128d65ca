"""The models that listen to speech: the speaker encoder (d-vector) and Whisper, one of each per process."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from .asr import Transcriber
    from .embedding import SpeakerEncoder


class Listeners:
    """The models that listen to speech (speaker encoder, Whisper), built on first use and then shared."""

    def __init__(
        self, settings: Settings, encoder: SpeakerEncoder | None = None, transcriber: Transcriber | None = None
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._transcriber = transcriber
        self._transcribers: dict[str, Transcriber] = {}
        self._lock = threading.Lock()

    @property
    def encoder(self) -> SpeakerEncoder:
        with self._lock:
            if self._encoder is None:
                from .embedding import SpeakerEncoder

                self._encoder = SpeakerEncoder()
            return self._encoder

    @property
    def transcriber(self) -> Transcriber:
        with self._lock:
            if self._transcriber is None:
                from .asr import Transcriber

                self._transcriber = Transcriber(self._settings.onnx_threads)
            return self._transcriber

    def transcriber_for(self, model: str) -> Transcriber:
        """Whisper `model` (asr.MODELS), one per process; tiny.en is the shared `transcriber`."""
        if model == "tiny.en":
            return self.transcriber
        with self._lock:
            if model not in self._transcribers:
                from .asr import Transcriber

                self._transcribers[model] = Transcriber(
                    self._settings.onnx_threads, model, self._settings.model_cache_dir
                )
            return self._transcribers[model]
