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

    def __init__(self, settings: Settings, encoder: SpeakerEncoder | None = None, transcriber: Transcriber | None = None) -> None:
        self._settings = settings
        self._encoder = encoder
        self._transcriber = transcriber
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
