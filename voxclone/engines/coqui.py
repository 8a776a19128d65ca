"""What the coqui-tts engines (Bark, XTTS-v2) share: whether coqui-tts is installed, the device, where
their weights are, and unloading a model left idle longer than `model_idle_ttl_s`.

coqui-tts (MPL-2.0, the maintained fork) and torch are an optional extra (`pip install
'voxclone[coqui]'`, see README); nothing here imports them until a model loads, so a Kokoro request
never imports torch.
"""

from __future__ import annotations

import gc
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from ..settings import Settings
from ..weights import ModelSpec, locate
from .base import READY, Availability, Engine

INSTALL = "pip install 'voxclone[coqui]' (README: Bark, OpenVoice and XTTS)"


def installed() -> bool:
    return importlib.util.find_spec("TTS") is not None and importlib.util.find_spec("torch") is not None


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class CoquiEngine(Engine):
    """An engine whose model is a coqui-tts torch model in a weights folder (voxclone.weights)."""

    model_spec: ClassVar[ModelSpec]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self._model: Any = None
        self._used = 0.0
        # One call at a time: torch seeds are process-wide, and torch spreads a call over every core (or
        # the GPU) already. Not `concurrent_calls = 1`: that would shrink the whole worker pool, and a
        # Kokoro request would wait behind seconds of Bark.
        self._call_lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return locate(self.settings, self.model_spec)[0]

    def availability(self) -> Availability:
        if not installed():
            return Availability("disabled", "coqui-tts and torch are not installed", INSTALL)
        folder, missing = locate(self.settings, self.model_spec)
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            return Availability("missing_weights", f"its weights are not in {folder} ({shown})", self.model_spec.fix())
        return READY

    def load(self) -> None:
        if self.settings.torch_threads and not self._loaded:
            import torch

            # Process-wide. One or two threads beat torch's one-per-core on a shared or busy CPU, where
            # its spinning workers wait for each other (bench/coqui_tiny.py: 1.5 s against 12 s here).
            torch.set_num_threads(self.settings.torch_threads)
        super().load()

    def model(self) -> Any:
        """The loaded model (loaded now if it is not), marked as just used."""
        self.load()
        self._used = time.monotonic()
        return self._model

    def _release(self) -> None:
        """Drop models other than the main one (called when the engine unloads)."""

    def unload_if_idle(self, idle_s: float) -> bool:
        with self._load_lock:
            if not self._loaded or time.monotonic() - self._used < idle_s:
                return False
            self._model, self._loaded = None, False
            self._release()
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True
