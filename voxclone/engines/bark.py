"""Bark (Suno) through coqui-tts: its stock speaker prompts, and `.npz` voice prompts as the original project
made them.

A Bark voice is a history prompt: `semantic_prompt` (int [T], < 10000), `coarse_prompt` (int [2, T'])
and `fine_prompt` (int [8, T']) (codec codes < 1024), the keys of Bark's own `.npz` files. Stock voices
are Bark's `en_speaker_0..9` (downloaded with the model, optional); a `.npz` on disk becomes a voice
through VOXCLONE_EXTRA_VOICE_PATHS or `POST /v1/voices/import`; `engine=bark` clones one from recordings
as coqui's Bark does (EnCodec's codes and HuBERT's quantised semantic tokens of the speech). Bark has no
speed control.

Bark speaks at most ~14 s per call; voxclone cuts text into pieces of at most `max_piece_chars`, and caps
each piece's generation at a length its text plausibly needs, so Bark does not babble past the words.
The weights (MIT) come from `voxclone models pull bark`: coqui's Bark checkpoints (pinned by the MD5
coqui itself checks), BERT's multilingual tokenizer, Meta's EnCodec 24 kHz codec, and for cloning HuBERT
base with GitMylo's semantic quantiser.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..cloning import ClonedVoice, CloneJob, Cloner
from ..errors import BadInput, EngineUnavailable
from ..settings import Settings
from ..weights import ModelFile, ModelSpec
from .base import AudioChunk, Capabilities, SpeakOptions, StockVoice, VoiceSpec
from .coqui import CoquiEngine, torch_device

SAMPLE_RATE = 24_000
SEMANTIC_VOCAB = 10_000
CODEBOOK = 1024
SPEAKERS = tuple(f"en_speaker_{i}" for i in range(10))
_KINDS = ("semantic", "coarse", "fine")
HUBERT_TOKENIZER = "hubert_tokenizer.pth"
_CLONE_SECONDS = 30.0  # of the recordings, the most that goes into a prompt
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
    # Cloning from recordings (serp-ai's and coqui's method): HuBERT's features, quantised into Bark's
    # semantic tokens by GitMylo's tokenizer. Optional: Bark speaks without them.
    hubert = f"{_HF}/facebook/hubert-base-ls960/resolve/main"
    cloning = (
        ModelFile("hubert/config.json", f"{hubert}/config.json", required=False),
        ModelFile("hubert/pytorch_model.bin", f"{hubert}/pytorch_model.bin", required=False),
        ModelFile(
            HUBERT_TOKENIZER,
            f"{_HF}/GitMylo/bark-voice-cloning/resolve/main/quantifier_hubert_base_ls960_14.pth",
            required=False,
        ),
    )
    suno = f"{_HF}/suno/bark/resolve/main/speaker_embeddings/v2"
    speakers = tuple(
        ModelFile(f"speakers/{s}_{k}_prompt.npy", f"{suno}/{s}_{k}_prompt.npy", required=False)
        for s in SPEAKERS
        for k in _KINDS
    )
    return checkpoints + parts + cloning + speakers


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


def _local_hubert(folder: Path) -> tuple[Any, Any]:
    """coqui's HuBERT feature extractor (read from the folder, not fetched from the hub) and quantiser."""
    from torch import nn
    from transformers import HubertModel
    from TTS.tts.layers.bark.hubert.kmeans_hubert import CustomHubert
    from TTS.tts.layers.bark.hubert.tokenizer import HubertTokenizer

    hubert = CustomHubert.__new__(CustomHubert)
    nn.Module.__init__(hubert)
    hubert.target_sample_hz, hubert.seq_len_multiple_of, hubert.output_layer = 16_000, None, 9  # coqui's values
    hubert.model = HubertModel.from_pretrained(str(folder / "hubert"))
    hubert.model.eval()
    quantiser = HubertTokenizer.load_from_checkpoint(str(folder / HUBERT_TOKENIZER), map_location="cpu")
    return hubert, quantiser


class BarkEngine(CoquiEngine):
    """Bark voices: stock speaker prompts and `.npz` prompts, at 24 kHz."""

    name = "bark"
    title = "Bark"
    capabilities = Capabilities(
        languages=("en", "de", "es", "fr", "hi", "it", "ja", "ko", "pl", "pt", "ru", "tr", "zh"),
        max_piece_chars=180,
        voice_files=(".npz",),
        cloning_tiers=("instant",),
    )
    weights = (MODEL,)
    model_spec = MODEL

    @classmethod
    def from_settings(cls, settings: Settings) -> BarkEngine:
        return cls(settings)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._hubert: tuple[Any, Any] | None = None

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
        if path.suffix.lower() != ".npz":
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

    def _release(self) -> None:
        self._hubert = None

    def prompt_from_audio(self, audio: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        """A voice prompt made from a speaker's recording: its codec codes and HuBERT's semantic tokens for
        it (what coqui's Bark clone does, from samples in memory). Blocking."""
        import torch

        from ..audio import resample

        if not (self.folder / "hubert" / "config.json").is_file() or not (self.folder / HUBERT_TOKENIZER).is_file():
            raise EngineUnavailable(f"Bark's cloning models (HuBERT) are not in {self.folder}; fix: {MODEL.fix()}")
        model = self.model()
        if self._hubert is None:
            self._hubert = _local_hubert(self.folder)
        hubert, quantiser = self._hubert
        speech = resample(audio, rate, SAMPLE_RATE)[: int(_CLONE_SECONDS * SAMPLE_RATE)]
        wav = torch.from_numpy(np.ascontiguousarray(speech, np.float32)).unsqueeze(0)
        with self._call_lock, torch.inference_mode():
            hubert.to(model.device)
            quantiser.to(model.device)
            inputs = model.processor(raw_audio=wav.squeeze(0), sampling_rate=SAMPLE_RATE, return_tensors="pt")
            codes = model.encodec.encode(
                inputs["input_values"].to(model.device),
                inputs["padding_mask"].to(model.device),
                model.encodec_bandwidth,
            )[0][0, 0]
            semantic = quantiser.get_token(hubert.forward(wav.to(model.device), input_sample_hz=SAMPLE_RATE))
        prompt = {
            "semantic_prompt": semantic.cpu().numpy().astype(np.int64),
            "coarse_prompt": codes[:2].cpu().numpy().astype(np.int64),
            "fine_prompt": codes.cpu().numpy().astype(np.int64),
        }
        return check_prompt(prompt, "the clone")

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


class BarkCloner(Cloner):
    """A Bark voice prompt (`.npz`, as the original project made with serp-ai's fork) from the recordings."""

    engine = "bark"
    tier = "instant"

    def clone(self, job: CloneJob) -> ClonedVoice:
        if not isinstance(job.engine, BarkEngine):
            raise BadInput("the bark cloner needs the bark engine")
        engine = job.engine
        rate = job.references[0].sample_rate
        audio = job.speech(rate, engine="Bark")
        job.progress(0.2, "encoding the recordings into a Bark prompt")
        prompt = job.run(lambda: engine.prompt_from_audio(audio, rate))
        out = io.BytesIO()
        np.savez(
            out,
            semantic_prompt=prompt["semantic_prompt"],
            coarse_prompt=prompt["coarse_prompt"],
            fine_prompt=prompt["fine_prompt"],
        )
        return ClonedVoice(params={"prompt": "voice.npz"}, files={"voice.npz": out.getvalue()})
