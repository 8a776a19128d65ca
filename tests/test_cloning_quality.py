"""Kokoro's instant clone on a real LibriSpeech clip: closer than any stock voice, more audio never worse,
filters that move the voice toward its speaker.

The clip (speaker 103, female, 14 s) is split into reference (first 65 %) and held-out audio; every
similarity is measured against the held-out part with sentences the reference never said.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxclone.cloning import ClonedVoice, CloneJob, Reference
from voxclone.engines.kokoro import SAMPLE_RATE, KokoroEngine, stock_packs
from voxclone.engines.kokoro_clone import InstantCloner
from voxclone.errors import BadAudio
from voxclone.filters import build_chain
from voxclone.spectrum import shape_frames

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech_train-clean-100"
SPEAKER = "103"
TEST_TEXT = "A cold wind blew across the harbor as the fishing boats came home at last."


def _ge2e_available() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import resemblyzer  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, int]:
    paths = sorted(DATA.glob(f"{SPEAKER}-*.flac"))
    if not paths:
        pytest.skip(f"LibriSpeech clip of speaker {SPEAKER} not found under {DATA}")
    audio, sr = sf.read(paths[0], dtype="float32")
    return audio, sr


@pytest.fixture(scope="module")
def kokoro(engines) -> KokoroEngine:
    engine = engines["kokoro"]
    engine.load()
    return engine


@pytest.fixture(scope="module")
def clone(kokoro: KokoroEngine, listeners, tmp_path_factory):
    """Kokoro's instant cloner run directly (engine calls made in place: no server runs here)."""
    cloner = InstantCloner()

    def run(references: list[Reference], budget_s: float) -> ClonedVoice:
        job = CloneJob.direct(
            kokoro,
            references,
            listeners.encoder,
            listeners.transcriber,
            budget_s=budget_s,
            workdir=tmp_path_factory.mktemp("clone"),
        )
        return cloner.clone(job)

    return run


def speak(kokoro: KokoroEngine, voice: ClonedVoice, text: str = TEST_TEXT, *, filtered: bool = True) -> np.ndarray:
    """What the cloned voice says, as the server would speak it (its style table, then its filters)."""
    style = np.load(io.BytesIO(voice.files["style.npy"]))
    audio = kokoro.synthesize_style(text, style)
    return build_chain(voice.filters).apply(audio, SAMPLE_RATE) if filtered else audio


class _Judge:
    """Speaker-embedding cosine: GE2E when resemblyzer is installed, else the voicefilter d-vector."""

    def __init__(self, kind: str, voicefilter) -> None:
        self.kind = kind
        self._voicefilter = voicefilter
        if kind == "ge2e":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder, preprocess_wav

                self._enc, self._pre = VoiceEncoder("cpu", verbose=False), preprocess_wav

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        if self.kind == "voicefilter":
            return self._voicefilter.embed(audio, sr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._enc.embed_utterance(self._pre(audio.astype(np.float32), source_sr=sr))


@pytest.mark.parametrize("judge_kind", ["ge2e", "voicefilter"])
def test_clone_is_closer_to_the_speaker_than_the_nearest_stock_voice(
    judge_kind: str, clip: tuple[np.ndarray, int], kokoro: KokoroEngine, clone_103: ClonedVoice, listeners
) -> None:
    if judge_kind == "ge2e" and not _ge2e_available():
        pytest.skip("resemblyzer (GE2E judge) not installed")
    audio, sr = clip
    judge = _Judge(judge_kind, listeners.encoder)
    held = judge.embed(audio[int(0.65 * len(audio)) :], sr)
    clone = speak(kokoro, clone_103)
    clone_sim = float(judge.embed(clone, SAMPLE_RATE) @ held)
    stock_sims = {
        name: float(judge.embed(kokoro.synthesize_style(TEST_TEXT, table), SAMPLE_RATE) @ held)
        for name, table in stock_packs().items()
    }
    nearest = max(stock_sims.values())
    assert clone_sim > nearest + 0.02, f"clone {clone_sim:.3f} vs nearest stock {nearest:.3f} ({stock_sims})"


@pytest.fixture(scope="module")
def clone_103(clip: tuple[np.ndarray, int], clone) -> ClonedVoice:
    audio, sr = clip
    return clone([Reference(audio[: int(0.65 * len(audio))], sr)], 45.0)


def test_more_reference_audio_is_not_worse(
    clip: tuple[np.ndarray, int], kokoro: KokoroEngine, clone, listeners
) -> None:
    audio, sr = clip
    a, b = int(0.35 * len(audio)), int(0.65 * len(audio))
    held = listeners.encoder.embed(audio[b:], sr)

    def similarity(refs: list[Reference]) -> float:
        # A tiny budget keeps this fast: stock voices, pitch-matched blends and the held-out check.
        return float(listeners.encoder.embed(speak(kokoro, clone(refs, 1.0)), SAMPLE_RATE) @ held)

    less = similarity([Reference(audio[:a], sr)])
    more = similarity([Reference(audio[:a], sr), Reference(audio[a:b], sr)])
    assert more >= less - 0.02, f"two references {more:.3f} < one reference {less:.3f}"


def test_clone_rejects_unusable_references(clone) -> None:
    with pytest.raises(BadAudio, match="at least"):
        clone([Reference(np.zeros(16_000 * 10, np.float32), 16_000)], 1.0)
    with pytest.raises(BadAudio):
        clone([], 1.0)


def test_a_clone_moves_like_its_speaker_spectrally(
    clip: tuple[np.ndarray, int], kokoro: KokoroEngine, clone_103: ClonedVoice
) -> None:
    audio, sr = clip
    reference = np.cov(shape_frames([audio[: int(0.65 * len(audio))]], sr))
    raw, mapped = speak(kokoro, clone_103, filtered=False), speak(kokoro, clone_103)
    before, after = (np.linalg.norm(np.cov(shape_frames([x], SAMPLE_RATE)) - reference) for x in (raw, mapped))
    assert after < 0.8 * before, f"shape covariance distance to the speaker {before:.2f} -> {after:.2f}"
