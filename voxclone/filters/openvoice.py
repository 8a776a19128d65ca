"""OpenVoice v2's tone-colour converter (through coqui-tts) as a voice filter, after any engine.

OpenVoice's own design: a base TTS speaks, and a converter gives its speech the reference speaker's
tone colour, an embedding its reference encoder takes from the speaker's recordings. Here the base is
any voxclone voice (Kokoro's by default) and the converter is one more filter in the voice's chain:
{"kind": "openvoice", "weights": FOLDER, "target": [the speaker's tone-colour embedding]}. The
source embedding is taken from each piece of base speech as it is converted, as coqui's converter
does. The embedding is made once, when the voice is cloned (voxclone.cloning.openvoice), never again
per request.

coqui-tts (MPL-2.0) and torch are imported only when a converter loads (the `coqui` extra); the
weights (MIT) come from `voxclone models pull openvoice_v2`. On a GPU when torch sees one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import resample
from ..errors import BadInput, EngineUnavailable
from ..weights import ModelFile, ModelSpec, missing_files
from .base import Filter

_REPO = "https://huggingface.co/myshell-ai/OpenVoiceV2/resolve/main/converter"
MODEL = ModelSpec(
    name="openvoice_v2",
    engine="openvoice",
    description="OpenVoice v2 tone-colour converter (MyShell), run by coqui-tts",
    licence="MIT",
    files=(ModelFile("config.json", f"{_REPO}/config.json"), ModelFile("checkpoint.pth", f"{_REPO}/checkpoint.pth")),
    revision="main",
)
INSTALL = "pip install 'voxclone[coqui]' (see README: coqui engines)"


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Converter:
    """One loaded converter: coqui's OpenVoice model built from the checkpoint folder's config.json."""

    def __init__(self, folder: Path) -> None:
        missing = missing_files(MODEL, folder, exact=False)
        if missing:
            raise EngineUnavailable(
                f"OpenVoice weights are missing in {folder} ({', '.join(missing)}); fix: {MODEL.fix()}"
            )
        try:
            import torch
            from TTS.vc.configs.openvoice_config import OpenVoiceConfig
            from TTS.vc.models.openvoice import OpenVoice
        except ImportError as e:
            raise EngineUnavailable(f"OpenVoice needs coqui-tts and torch: {INSTALL}") from e
        original = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config = OpenVoiceConfig()
        # OpenVoice builds its network from its config's "model" section; coqui keeps its defaults (the
        # released converter's sizes). Reading the sizes from the file loads any converter, as OpenVoice does.
        for key, value in original.get("model", {}).items():
            if hasattr(config.model_args, key):
                setattr(config.model_args, key, value)
        model = OpenVoice(config)
        model.load_checkpoint(config, folder / "checkpoint.pth", eval=True)
        self.model = model.to(torch_device())
        self.rate = int(model.config.audio.input_sample_rate)
        self._n_fft = int(model.config.audio.fft_size)
        self._torch = torch
        self._lock = threading.Lock()  # GRU and weight-norm state: one conversion at a time

    def _tensor(self, audio: np.ndarray, rate: int) -> Any:
        samples = resample(audio, rate, self.rate)
        if samples.size < self._n_fft:  # the spectrogram needs one whole frame
            samples = np.pad(samples, (0, self._n_fft - samples.size))
        return self._torch.from_numpy(np.ascontiguousarray(samples, np.float32)).to(self.model.device)

    def embedding(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """The tone-colour embedding of some speech: (gin_channels,) floats."""
        with self._lock, self._torch.inference_mode():
            se, _ = self.model.extract_se(self._tensor(audio, rate))
        return se.reshape(-1).float().cpu().numpy()

    def convert(self, audio: np.ndarray, rate: int, target: np.ndarray) -> np.ndarray:
        """`audio` in the tone colour `target`, at `rate` and of the same length."""
        if audio.size == 0:
            return audio
        with self._lock, self._torch.inference_mode():
            source, spec = self.model.extract_se(self._tensor(audio, rate))
            g_tgt = self._torch.from_numpy(np.asarray(target, np.float32)).reshape(1, -1, 1).to(self.model.device)
            out = self.model.inference(spec, {"g_src": source, "g_tgt": g_tgt})["model_outputs"][0, 0]
        converted = resample(out.float().cpu().numpy(), self.rate, rate)
        converted = np.pad(converted, (0, max(0, audio.size - converted.size)))[: audio.size]
        return np.clip(converted, -1.0, 1.0).astype(np.float32)


@lru_cache(maxsize=4)
def converter(folder: Path) -> Converter:
    """The converter of a weights folder, loaded once per process."""
    return Converter(folder)


class ToneColour(Filter):
    """OpenVoice's converter towards one speaker's tone colour."""

    kind = "openvoice"
    weights = (MODEL,)

    def __init__(self, folder: Path, target: np.ndarray) -> None:
        self.folder = folder
        self.target = np.asarray(target, np.float32).reshape(-1)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ToneColour:
        try:
            target = np.asarray(spec["target"], np.float32)
            folder = Path(str(spec["weights"]))
        except (KeyError, TypeError, ValueError) as e:
            raise BadInput(f"an openvoice filter needs 'weights' and a 'target' embedding: {e!r}") from e
        if target.ndim != 1 or not target.size or not np.isfinite(target).all():
            raise BadInput("an openvoice filter's target is a list of finite numbers")
        return cls(folder, target)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "weights": str(self.folder), "target": [round(float(x), 6) for x in self.target]}

    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return converter(self.folder).convert(audio, sample_rate, self.target)
