"""Voice filters: exact where they must be (length, loudness, no change when none is asked), moving
the spectrum as asked, and rebuilt from the JSON a voice stores."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import SHARED_DATA

from voxclone.errors import BadInput
from voxclone.filters import FilterChain, build_chain
from voxclone.filters.spectral import Equaliser, ShapeMapping
from voxclone.spectrum import band_centres, shape_frames

RATE = 24_000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Real speech (a LibriSpeech reader), at the rate engines speak."""
    from voxclone.audio import resample

    audio, rate = sf.read(SHARED_DATA / "103-1240-0000.flac", dtype="float32")
    return resample(audio[: rate * 6], rate, RATE)


def test_an_empty_chain_returns_the_audio_untouched() -> None:
    audio = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
    assert FilterChain().apply(audio, RATE) is audio
    assert build_chain([]).apply(audio, RATE) is audio


def test_equaliser_keeps_length_and_moves_the_spectrum_as_asked() -> None:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(RATE * 2) * 0.05).astype(np.float32)
    gains = np.where(band_centres() > 2000, 9.0, -3.0)  # brighten
    out = Equaliser(gains).apply(audio, RATE)
    assert len(out) == len(audio)
    spec_in, spec_out = (np.abs(np.fft.rfft(x)) ** 2 for x in (audio, out))
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    high, low = (freqs > 3000) & (freqs < 7000), (freqs > 200) & (freqs < 1000)
    gain_high = 10 * np.log10(spec_out[high].sum() / spec_in[high].sum())
    gain_low = 10 * np.log10(spec_out[low].sum() / spec_in[low].sum())
    assert gain_high - gain_low == pytest.approx(12.0, abs=2.0)
    assert np.max(np.abs(out)) <= 1.0


def test_shape_mapping_changes_how_the_spectrum_moves_and_nothing_else(speech: np.ndarray) -> None:
    shapes = shape_frames([speech], RATE)
    centre, spread = shapes.mean(axis=1), shapes.std(axis=1)
    loud = np.sqrt(np.mean(speech**2))

    def after(scale: float) -> np.ndarray:
        out = ShapeMapping(centre, scale * np.eye(len(centre))).apply(speech, RATE)
        assert len(out) == len(speech)
        return out

    assert np.max(np.abs(after(1.0) - speech)) < 1e-4  # no change asked, none made
    for scale, lo, hi in ((1.5, 1.2, 1.6), (0.6, 0.5, 0.85)):  # overlapping frames blur a little of it
        out = after(scale)
        ratio = np.median(shape_frames([out], RATE).std(axis=1) / spread)
        assert lo < ratio < hi, f"asked for x{scale} the spread, got x{ratio:.2f}"
        assert np.sqrt(np.mean(out**2)) == pytest.approx(loud, rel=0.25)  # shape changes, not loudness


def test_a_chain_survives_its_json_and_sounds_the_same(speech: np.ndarray) -> None:
    shapes = shape_frames([speech], RATE)
    chain = FilterChain(
        [ShapeMapping(shapes.mean(axis=1), 1.2 * np.eye(len(shapes))), Equaliser(np.linspace(-3, 3, len(shapes)))]
    )
    rebuilt = build_chain(chain.specs())
    assert [f.kind for f in rebuilt.filters] == ["shape", "equaliser"]
    original, again = chain.apply(speech, RATE), rebuilt.apply(speech, RATE)
    assert np.max(np.abs(original - again)) < 2e-3  # the stored JSON is rounded, nothing more


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"kind": "reverb"}, "unknown voice filter"),
        ({"kind": "equaliser"}, "gains_db"),
        ({"kind": "equaliser", "gains_db": [1.0, 2.0]}, "gains_db"),
        ({"kind": "shape", "centre": [0.0] * 64, "transform": [[1.0]]}, "transform"),
    ],
)
def test_a_malformed_filter_spec_is_refused_with_what_is_wrong(spec, needle) -> None:
    with pytest.raises(BadInput, match=needle):
        build_chain([spec])
