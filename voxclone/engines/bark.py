"""Bark (Suno) through coqui-tts: its stock speaker prompts, and `.npz` voice prompts as the original project
made them.

A Bark voice is a history prompt: `semantic_prompt` (int [T], < 10000), `coarse_prompt` (int [2, T'])
and `fine_prompt` (int [8, T']) (codec codes < 1024), the keys of Bark's own `.npz` files. Stock voices
are Bark's `en_speaker_0..9` (downloaded with the model, optional); a `.npz` on disk becomes a voice
through VOXCLONE_EXTRA_VOICE_PATHS or `POST /v1/voices/import`. Bark has no speed control.

Bark speaks at most ~14 s per call; voxclone cuts text into pieces of at most `max_piece_chars`, and caps
each piece's generation at a length its text plausibly needs, so Bark does not babble past the words.
The weights (MIT) come from `voxclone models pull bark`: coqui's Bark checkpoints (pinned by the MD5
coqui itself checks), BERT's multilingual tokenizer and Meta's EnCodec 24 kHz codec.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput
from ..settings import Settings
from ..weights import ModelFile, ModelSpec
from .base import AudioChunk, Capabilities, SpeakOptions, StockVoice, VoiceSpec
from .coqui import CoquiEngine, torch_device

SAMPLE_RATE = 24_000
SEMANTIC_VOCAB = 10_000
CODEBOOK = 1024
SPEAKERS = tuple(f"en_speaker_{i}" for i in range(10))
_KINDS = ("semantic", "coarse", "fine")
_HF = "https://huggingface.co"


def _files() -> tuple[ModelFile, ...]:
    bark = f"{_HF}/erogol/bark/resolve/main"
    checkpoints = (
        ModelFile("text_2.pt", f"{bark}/text_2.pt", md5="54afa89d65e318d4f5f80e8e8799026a"),
        ModelFile("coarse_2.pt", f"{bark}/coarse_2.pt", md5="8a98094e5e3a255a5c9c0ab7efe8fd28"),
        ModelFile("fine_2.pt", f"{bark}/fine_2.pt", md5="59d184ed44e3650774a2f0503a48a97b"),
    )
    bert = f"{_HF}/google-bert/bert-base-multilingual-cased/resolve/main"
    encodec = f"{_HF}/facebook/encodec_24khz/resolve/main"
    parts = (
        ModelFile("tokenizer/vocab.txt", f"{bert}/vocab.txt"),
        ModelFile("tokenizer/tokenizer_config.json", f"{bert}/tokenizer_config.json"),
        ModelFile("encodec/config.json", f"{encodec}/config.json"),
        ModelFile("encodec/model.safetensors", f"{encodec}/model.safetensors"),
        ModelFile("encodec/preprocessor_config.json", f"{encodec}/preprocessor_config.json"),
    )
    suno = f"{_HF}/suno/bark/resolve/main/speaker_embeddings/v2"
    speakers = tuple(
        ModelFile(f"speakers/{s}_{k}_prompt.npy", f"{suno}/{s}_{k}_prompt.npy", required=False)
        for s in SPEAKERS
        for k in _KINDS
    )
    return checkpoints + parts + speakers


MODEL = ModelSpec(
    name="bark",
    engine="bark",
    description="Bark (Suno): text -> semantic -> codec tokens, with Bark's speaker prompts; run by coqui-tts",
    licence="MIT",
    files=_files(),
    revision="main",
)


def read_prompt(path: Path) -> dict[str, np.ndarray]:
    """A Bark `.npz` voice prompt, checked: BadInput saying what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as data:
            prompt = {f"{k}_prompt": np.asarray(data[f"{k}_prompt"]) for k in _KINDS}
    except (OSError, KeyError, ValueError) as e:
        raise BadInput(
            f"{path.name} is not a Bark voice prompt (semantic_prompt, coarse_prompt, fine_prompt): {e}"
        ) from e
    return check_prompt(prompt, path.name)


def check_prompt(prompt: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    shapes = {"semantic_prompt": (1, SEMANTIC_VOCAB), "coarse_prompt": (2, CODEBOOK), "fine_prompt": (2, CODEBOOK)}
    for key, (ndim, limit) in shapes.items():
        array = prompt[key]
        if not np.issubdtype(array.dtype, np.integer) or array.ndim != ndim or array.size == 0:
            raise BadInput(f"{name}: {key} must be a non-empty {ndim}-D integer array, got {array.dtype} {array.shape}")
        if array.min() < 0 or array.max() >= limit:
            raise BadInput(f"{name}: {key} values must be in 0..{limit - 1}")
    if prompt["coarse_prompt"].shape[0] != 2 or prompt["fine_prompt"].shape[0] != 8:
        raise BadInput(f"{name}: coarse_prompt is [2, T] and fine_prompt [8, T] codebooks")
    return prompt


def _local_bark(config: Any, folder: Path) -> Any:
    """coqui's Bark, its tokenizer and codec read from the model's folder (coqui's own constructor fetches
    them from the Hugging Face hub by name, which voxclone never lets a server do)."""
    from transformers import AutoProcessor, BertTokenizer, EncodecModel
    from TTS.tts.layers.bark.model import GPT
    from TTS.tts.layers.bark.model_fine import FineGPT
    from TTS.tts.models.bark import Bark
    from TTS.tts.models.base_tts import BaseTTS

    model = Bark.__new__(Bark)
    model.tokenizer = BertTokenizer.from_pretrained(str(folder / "tokenizer"))
    BaseTTS.__init__(model, config)
    model.config.num_chars = len(model.tokenizer)
    model.semantic_model = GPT(config.semantic_config)
    model.coarse_model = GPT(config.coarse_config)
    model.fine_model = FineGPT(config.fine_config)
    model.encodec = EncodecModel.from_pretrained(str(folder / "encodec"))
    model.processor = AutoProcessor.from_pretrained(str(folder / "encodec"))  # type: ignore[no-untyped-call]
    model.encodec_bandwidth = 6.0  # 8 codebooks, as Bark's fine model makes
    return model


class BarkEngine(CoquiEngine):
    """Bark voices: stock speaker prompts and `.npz` prompts, at 24 kHz."""

    name = "bark"
    capabilities = Capabilities(
        languages=("en", "de", "es", "fr", "hi", "it", "ja", "ko", "pl", "pt", "ru", "tr", "zh"),
        max_piece_chars=180,
        voice_files=(".npz",),
    )
    weights = (MODEL,)
    model_spec = MODEL

    @classmethod
    def from_settings(cls, settings: Settings) -> BarkEngine:
        return cls(settings)

    def _load(self) -> None:
        from TTS.tts.configs.bark_config import BarkConfig

        config = BarkConfig()
        # voxclone checks the files itself (`models pull`); coqui's own check would delete weights whose
        # MD5 it does not know (a fine-tune, a test model) and fetch the released ones from the network.
        config.USE_SMALLER_MODELS = True
        model = _local_bark(config, self.folder)
        model.load_checkpoint(config, str(self.folder), eval=True)
        self._model = model.to(torch_device())

    # Voices -------------------------------------------------------------------------------------

    def _speaker_paths(self, speaker: str) -> list[Path]:
        return [self.folder / "speakers" / f"{speaker}_{kind}_prompt.npy" for kind in _KINDS]

    def stock_voices(self) -> list[StockVoice]:
        return [
            StockVoice(name=s, params={"speaker": s}, labels={"language": "en"}, description=f"Bark stock speaker {s}")
            for s in SPEAKERS
            if all(p.is_file() for p in self._speaker_paths(s))
        ]

    def voice_from_file(self, path: Path) -> dict[str, Any] | None:
        if path.suffix.lower() != ".npz" or path.name.endswith(".tone.npz"):
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if "semantic_prompt" not in data.files:
                    return None
        except (OSError, ValueError):
            return None
        return {"prompt": str(path.resolve())}

    def _prompt(self, params: Mapping[str, Any], files_dir: Path | None) -> dict[str, np.ndarray]:
        if "speaker" in params:
            speaker = str(params["speaker"])
            paths = self._speaker_paths(speaker)
            if speaker not in SPEAKERS or not all(p.is_file() for p in paths):
                raise BadInput(
                    f"Bark speaker {speaker!r} is not here; `voxclone models pull bark` fetches {SPEAKERS[0]}.."
                )
            loaded = {f"{kind}_prompt": np.load(p, allow_pickle=False) for kind, p in zip(_KINDS, paths, strict=True)}
            return check_prompt(loaded, speaker)
        if "prompt" in params:
            return read_prompt(VoiceSpec("", 0, params, files_dir).path(str(params["prompt"])))
        raise BadInput("a Bark voice needs 'speaker' (a stock prompt) or 'prompt' (a .npz file)")

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        self._prompt(params, files_dir)

    # Speaking -----------------------------------------------------------------------------------

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        if options.speed != 1.0:
            raise BadInput("Bark has no speed control; ask for speed 1.0")
        import torch

        model = self.model()
        prompt = self._prompt(voice.params, voice.files_dir)
        history = tuple(torch.from_numpy(prompt[f"{kind}_prompt"].astype(np.int64)) for kind in _KINDS)
        with self._call_lock:
            torch.manual_seed(options.seed)  # the same piece in the same voice sounds the same every time
            audio = model.generate_audio(
                text, history_prompt=history, silent=True, max_gen_duration_s=min(14.0, 1.0 + len(text) / 10)
            )[0]
        yield AudioChunk(np.clip(audio.float().cpu().numpy(), -1.0, 1.0), SAMPLE_RATE, text)
