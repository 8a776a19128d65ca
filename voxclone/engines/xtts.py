"""XTTS-v2 (Coqui) through coqui-tts: zero-shot cloning from a reference, one sentence per call.

Its weights are under the Coqui Public Model License (CPML): non-commercial use only. The engine is
off until `VOXCLONE_XTTS_ACCEPT_CPML=true` says the user has read it, and `voxclone models list|pull`
show the licence. A clone (`POST /v1/voices/add` with `engine=xtts`) stores the speaker's
conditioning (GPT latents and speaker embedding), computed once from the recordings; each piece of
text, a sentence or a clause, is one XTTS call, streamed as soon as it is made.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import resample
from ..cloning import ClonedVoice, CloneJob, Cloner
from ..errors import BadInput
from ..settings import Settings
from ..weights import ModelFile, ModelSpec
from .base import AudioChunk, Availability, Capabilities, SpeakOptions, StockVoice, VoiceSpec
from .coqui import CoquiEngine, torch_device

CPML = (
    "XTTS-v2's weights are licensed under the Coqui Public Model License 1.0.0 (https://coqui.ai/cpml): "
    "non-commercial use only"
)
_REPO = "https://huggingface.co/coqui/XTTS-v2/resolve/main"
MODEL = ModelSpec(
    name="xtts_v2",
    engine="xtts",
    description="XTTS-v2 (Coqui): zero-shot cloning in 17 languages, run by coqui-tts",
    licence="CPML (non-commercial)",
    files=(
        ModelFile("config.json", f"{_REPO}/config.json"),
        ModelFile("model.pth", f"{_REPO}/model.pth"),
        ModelFile("vocab.json", f"{_REPO}/vocab.json"),
    ),
    notice=f"{CPML}. The xtts engine stays off until VOXCLONE_XTTS_ACCEPT_CPML=true.",
    revision="main",
)
LATENTS = "xtts_latents.npz"
_REFERENCE_S = 30.0  # XTTS conditions on at most this much speech


class XttsEngine(CoquiEngine):
    """Cloned XTTS-v2 voices (no stock voices), at 24 kHz."""

    name = "xtts"
    title = "XTTS-v2"
    capabilities = Capabilities(
        languages=(
            "en",
            "es",
            "fr",
            "de",
            "it",
            "pt",
            "pl",
            "tr",
            "ru",
            "nl",
            "cs",
            "ar",
            "zh",
            "ja",
            "hu",
            "ko",
            "hi",
        ),
        max_piece_chars=240,  # XTTS's own limit for English is 250 characters per call
        cloning_tiers=("instant",),
    )
    weights = (MODEL,)
    model_spec = MODEL

    @classmethod
    def from_settings(cls, settings: Settings) -> XttsEngine:
        return cls(settings)

    def availability(self) -> Availability:
        if not self.settings.xtts_accept_cpml:
            return Availability("disabled", CPML, "set VOXCLONE_XTTS_ACCEPT_CPML=true if your use is non-commercial")
        return super().availability()

    def _load(self) -> None:
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts

        config = XttsConfig()
        config.load_json(str(self.folder / "config.json"))
        model = Xtts(config)
        model.load_checkpoint(config, checkpoint_dir=str(self.folder), eval=True)
        self._model = model.to(torch_device())

    @property
    def input_rate(self) -> int:
        return int(self.model().args.input_sample_rate)

    def stock_voices(self) -> list[StockVoice]:
        return []

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        self._latents(params, files_dir)

    def _latents(self, params: Mapping[str, Any], files_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
        if "latents" not in params:
            raise BadInput("an XTTS voice needs 'latents' (made by cloning with engine=xtts)")
        path = VoiceSpec("", 0, params, files_dir).path(str(params["latents"]))
        try:
            with np.load(path, allow_pickle=False) as data:
                return np.asarray(data["gpt_cond_latent"], np.float32), np.asarray(
                    data["speaker_embedding"], np.float32
                )
        except (OSError, KeyError, ValueError) as e:
            raise BadInput(f"{path.name} holds no XTTS conditioning: {e}") from e

    def conditioning(self, audio: np.ndarray, rate: int) -> bytes:
        """The speaker's conditioning from their speech, as the voice's `.npz` file. Blocking."""
        import torch

        model = self.model()
        speech = resample(audio, rate, self.input_rate)[: int(_REFERENCE_S * self.input_rate)]
        tensor = torch.from_numpy(np.ascontiguousarray(speech, np.float32)).unsqueeze(0).to(model.device)
        with self._call_lock, torch.inference_mode():
            latent = model.get_gpt_cond_latents(tensor, self.input_rate)
            embedding = model.get_speaker_embedding(tensor, self.input_rate)
        out = io.BytesIO()
        np.savez(out, gpt_cond_latent=latent.float().cpu().numpy(), speaker_embedding=embedding.float().cpu().numpy())
        return out.getvalue()

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        import torch

        model = self.model()
        latent, embedding = self._latents(voice.params, voice.files_dir)
        language = str(voice.params.get("language", "en"))
        with self._call_lock, torch.inference_mode():
            torch.manual_seed(options.seed)  # the same piece in the same voice sounds the same every time
            out = model.inference(
                text,
                language,
                torch.from_numpy(latent),
                torch.from_numpy(embedding),
                speed=options.speed,
                enable_text_splitting=False,  # voxclone has cut the text into pieces already
            )
        audio = np.asarray(out["wav"], np.float32).reshape(-1)
        yield AudioChunk(np.clip(audio, -1.0, 1.0), int(model.args.output_sample_rate), text)


class XttsCloner(Cloner):
    """XTTS's zero-shot conditioning from the recordings (all of them, up to 30 s of speech)."""

    engine = "xtts"
    tier = "instant"

    def clone(self, job: CloneJob) -> ClonedVoice:
        if not isinstance(job.engine, XttsEngine):
            raise BadInput("the xtts cloner needs the xtts engine")
        engine = job.engine
        rate = job.references[0].sample_rate
        audio = job.speech(rate, engine="XTTS")
        job.progress(0.2, "conditioning XTTS on the recordings")
        latents = job.run(lambda: engine.conditioning(audio, rate))
        return ClonedVoice(params={"latents": LATENTS, "language": "en"}, files={LATENTS: latents})
