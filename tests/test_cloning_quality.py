"""Clone quality on a real LibriSpeech clip: closer than any stock voice, more audio never worse,
and post-processing that is exact where it must be.

The clip (speaker 103, female, 14 s) is split into reference (first 65 %) and held-out audio; every
similarity is measured against the held-out part with sentences the reference never said.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxclone.cloning import Reference, apply_post, clone_voice, shared_encoder
from voxclone.cloning.analysis import band_centres, shape_frames
from voxclone.engines.kokoro import SAMPLE_RATE, KokoroEngine, stock_packs
from voxclone.errors import BadAudio

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
def kokoro(models_dir: Path) -> KokoroEngine:
    engine = KokoroEngine(models_dir)
    engine.load()
    return engine


class _Judge:
    """Speaker-embedding cosine: GE2E when resemblyzer is installed, else the voicefilter d-vector."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "ge2e":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder, preprocess_wav

                self._enc, self._pre = VoiceEncoder("cpu", verbose=False), preprocess_wav

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        if self.kind == "voicefilter":
            return shared_encoder().embed(audio, sr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._enc.embed_utterance(self._pre(audio.astype(np.float32), source_sr=sr))


@pytest.mark.slow
@pytest.mark.parametrize("judge_kind", ["ge2e", "voicefilter"])
def test_clone_is_closer_to_the_speaker_than_the_nearest_stock_voice(
    judge_kind: str, clip: tuple[np.ndarray, int], kokoro: KokoroEngine, _clone_103: object
) -> None:
    if judge_kind == "ge2e" and not _ge2e_available():
        pytest.skip("resemblyzer (GE2E judge) not installed")
    audio, sr = clip
    judge = _Judge(judge_kind)
    held = judge.embed(audio[int(0.65 * len(audio)) :], sr)
    result = _clone_103
    clone = apply_post(kokoro.synthesize_style(TEST_TEXT, result.style), SAMPLE_RATE, result.post)  # type: ignore[attr-defined]
    clone_sim = float(judge.embed(clone, SAMPLE_RATE) @ held)
    stock_sims = {
        name: float(judge.embed(kokoro.synthesize_style(TEST_TEXT, table), SAMPLE_RATE) @ held)
        for name, table in stock_packs().items()
    }
    nearest = max(stock_sims.values())
    assert clone_sim > nearest + 0.02, f"clone {clone_sim:.3f} vs nearest stock {nearest:.3f} ({stock_sims})"


@pytest.fixture(scope="module")
def _clone_103(clip: tuple[np.ndarray, int], kokoro: KokoroEngine) -> object:
    audio, sr = clip
    return clone_voice(kokoro, [Reference(audio[: int(0.65 * len(audio))], sr)], time_budget_s=45.0)


def test_more_reference_audio_is_not_worse(clip: tuple[np.ndarray, int], kokoro: KokoroEngine) -> None:
    audio, sr = clip
    a, b = int(0.35 * len(audio)), int(0.65 * len(audio))
    held = shared_encoder().embed(audio[b:], sr)

    def similarity(refs: list[Reference]) -> float:
        # A tiny budget keeps this fast: stock voices, pitch-matched blends and the held-out check.
        result = clone_voice(kokoro, refs, time_budget_s=1.0)
        speech = apply_post(kokoro.synthesize_style(TEST_TEXT, result.style), SAMPLE_RATE, result.post)
        return float(shared_encoder().embed(speech, SAMPLE_RATE) @ held)

    less = similarity([Reference(audio[:a], sr)])
    more = similarity([Reference(audio[:a], sr), Reference(audio[a:b], sr)])
    assert more >= less - 0.02, f"two references {more:.3f} < one reference {less:.3f}"


def test_clone_rejects_unusable_references(kokoro: KokoroEngine) -> None:
    with pytest.raises(BadAudio, match="at least"):
        clone_voice(kokoro, [Reference(np.zeros(16_000 * 10, np.float32), 16_000)])
    with pytest.raises(BadAudio):
        clone_voice(kokoro, [])


def test_empty_post_is_identity() -> None:
    audio = np.random.default_rng(0).standard_normal(24_000).astype(np.float32) * 0.1
    assert apply_post(audio, SAMPLE_RATE, {}) is audio


def test_equaliser_keeps_length_and_moves_the_spectrum_as_asked() -> None:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(SAMPLE_RATE * 2) * 0.05).astype(np.float32)
    centres = band_centres()
    gains = np.where(centres > 2000, 9.0, -3.0)  # brighten
    out = apply_post(audio, SAMPLE_RATE, {"eq_db": gains.tolist()})
    assert abs(len(out) - len(audio)) <= 0.01 * len(audio)
    spec_in, spec_out = (np.abs(np.fft.rfft(x)) ** 2 for x in (audio, out))
    freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    high, low = (freqs > 3000) & (freqs < 7000), (freqs > 200) & (freqs < 1000)
    gain_high = 10 * np.log10(spec_out[high].sum() / spec_in[high].sum())
    gain_low = 10 * np.log10(spec_out[low].sum() / spec_in[low].sum())
    assert gain_high - gain_low == pytest.approx(12.0, abs=2.0)
    assert np.max(np.abs(out)) <= 1.0



def test_shape_mapping_changes_how_the_spectrum_moves_and_nothing_else(kokoro: KokoroEngine) -> None:
    speech = kokoro.synthesize_style(TEST_TEXT, stock_packs()["jf_alpha"])
    shapes = shape_frames([speech], SAMPLE_RATE)
    centre, spread = shapes.mean(axis=1), shapes.std(axis=1)
    loud = np.sqrt(np.mean(speech**2))

    def after(scale: float) -> np.ndarray:
        transform = scale * np.eye(len(centre))
        out = apply_post(speech, SAMPLE_RATE, {"shape": {"centre": centre.tolist(), "transform": transform.tolist()}})
        assert len(out) == len(speech)
        return out

    assert np.max(np.abs(after(1.0) - speech)) < 1e-4  # no change asked, none made
    for scale, lo, hi in ((1.5, 1.2, 1.6), (0.6, 0.5, 0.85)):  # overlapping frames blur a little of it
        out = after(scale)
        ratio = np.median(shape_frames([out], SAMPLE_RATE).std(axis=1) / spread)
        assert lo < ratio < hi, f"asked for x{scale} the spread, got x{ratio:.2f}"
        assert np.sqrt(np.mean(out**2)) == pytest.approx(loud, rel=0.25)  # shape changes, not loudness


@pytest.mark.slow
def test_a_clone_moves_like_its_speaker_spectrally(
    clip: tuple[np.ndarray, int], kokoro: KokoroEngine, _clone_103: object
) -> None:
    audio, sr = clip
    reference = np.cov(shape_frames([audio[: int(0.65 * len(audio))]], sr))
    raw = kokoro.synthesize_style(TEST_TEXT, _clone_103.style)  # type: ignore[attr-defined]
    mapped = apply_post(raw, SAMPLE_RATE, _clone_103.post)  # type: ignore[attr-defined]
    before, after = (np.linalg.norm(np.cov(shape_frames([x], SAMPLE_RATE)) - reference) for x in (raw, mapped))
    assert after < 0.8 * before, f"shape covariance distance to the speaker {before:.2f} -> {after:.2f}"
