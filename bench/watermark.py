"""The watermark against issue 20's bar: robustness, false positives, audibility and cost.

    PYTHONPATH=. .venv/bin/python bench/speech_corpus.py             # once: 200 generated clips (unmarked)
    PYTHONPATH=. .venv/bin/python bench/watermark.py robustness      # detection per transformation + false positives
    PYTHONPATH=. .venv/bin/python bench/watermark.py robustness --only noise_20dB,opus_24k --clips 60 --per-clip
    PYTHONPATH=. .venv/bin/python bench/watermark.py audibility      # WER, d-vector similarity, DNSMOS: marked vs not
    PYTHONPATH=. .venv/bin/python bench/watermark.py cost            # RTF and time-to-first-audio added
    PYTHONPATH=. .venv/bin/python bench/watermark.py perth           # the same robustness table for resemble-perth

Marked clips are made exactly as the server makes them (voxclone.provenance marks each clip as one
piece, with this bench's installation, the clip's voice and today), then put through each
transformation and read by the server's own detector (`Provenance.detect_audio`). False positives:
the 251 LibriSpeech recordings of ../shared/data (one per speaker), put through the same transformations.
Results are printed and written to bench/out/watermark-*.json; with --per-clip, every clip's score,
threshold, match score, length, level and voice go to bench/out/watermark-clips.json, and the misses
and the weakest clips of each transformation are printed (which clips a transformation costs, and why).

`perth` needs torch and resemble-perth (MIT; `pip install --no-deps resemble-perth==1.0.1`); its
audio processor imports torchaudio only for an STFT, which this bench provides through torch.stft (as
modules holding the same buffers as torchaudio's, which PerTh's checkpoint carries).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import speech_corpus

from voxclone.audio import ANALYSIS_RATE, OutputFormat, decode, encode, resample
from voxclone.audit import AuditLog
from voxclone.blobs import FileBlobs
from voxclone.database import Database, sqlite_url
from voxclone.engines import AudioChunk
from voxclone.provenance import Provenance
from voxclone.voices import VoiceLibrary

OUT = Path(__file__).parent / "out"
Transform = Callable[[np.ndarray, int, int], tuple[np.ndarray, int]]


def _codec(name: str, kbps: int) -> Transform:
    def run(x: np.ndarray, rate: int, seed: int) -> tuple[np.ndarray, int]:
        body = encode(x, rate, OutputFormat(name, bitrate=kbps * 1000))
        return decode(body, target_rate=ANALYSIS_RATE, max_seconds=600), ANALYSIS_RATE

    return run


def _noise(snr_db: float) -> Transform:
    """White noise at `snr_db` below the clip's mean power."""

    def run(x: np.ndarray, rate: int, seed: int) -> tuple[np.ndarray, int]:
        noise = np.random.default_rng(seed).standard_normal(x.size).astype(np.float32)
        return x + noise * np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10)), rate

    return run


def _excerpt(seconds: float) -> Transform:
    """A `seconds` stretch starting anywhere (not on the mark's grid)."""

    def run(x: np.ndarray, rate: int, seed: int) -> tuple[np.ndarray, int]:
        n = int(seconds * rate)
        start = int(np.random.default_rng(seed).integers(0, max(1, x.size - n)))
        return x[start : start + n], rate

    return run


TRANSFORMS: dict[str, Transform] = {
    "none": lambda x, r, s: (x, r),
    "mp3_64k": _codec("mp3", 64),
    "opus_24k": _codec("opus", 24),
    "resample_16k": lambda x, r, s: (resample(x, r, 16_000), 16_000),
    "resample_8k": lambda x, r, s: (resample(x, r, 8_000), 8_000),  # a phone line's band
    "gain_-12dB": lambda x, r, s: (x * 0.25, r),
    "gain_+6dB": lambda x, r, s: (np.clip(x * 2.0, -1.0, 1.0), r),  # clipped where it goes over
    "excerpt_3s": _excerpt(3.0),
    "noise_20dB": _noise(20.0),
}
EXTRA: dict[str, Transform] = {  # beyond the bar: how it degrades
    "noise_15dB": _noise(15.0),
    "noise_10dB": _noise(10.0),
    "mp3_64k+excerpt_3s": lambda x, r, s: _excerpt(3.0)(*_codec("mp3", 64)(x, r, s), s),
    "opus_24k+resample_8k": lambda x, r, s: (resample(*_codec("opus", 24)(x, r, s), 8_000), 8_000),
}


def provenance(tmp: Path, voices: list[str]) -> Provenance:
    """A bench installation a year old whose library holds the corpus voices and 100 others: 106 voices
    on 368 days are the candidates a mark is matched against."""
    (tmp / "installation.json").write_text(
        json.dumps({"installation_id": "bench", "created_at_unix": time.time() - 365 * 86_400})
    )
    database = Database(sqlite_url(tmp / "voices.sqlite3"))
    library = VoiceLibrary(database, FileBlobs(tmp / "voices"))
    for name in [*voices, *(f"other-{i}" for i in range(100))]:
        library.create(voice_id=name, name=name, engine="bench", params={}, category="cloned")
    return Provenance(tmp, library, AuditLog(database))


def _rate(hits: list[bool]) -> float:
    return round(100.0 * sum(hits) / max(1, len(hits)), 2)


def _level_dbfs(x: np.ndarray) -> float:
    return round(float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12)), 1)


def _report_clips(name: str, clips: list[dict]) -> None:
    """The misses and the five lowest margins (score - threshold) of one transformation."""
    weakest = sorted(clips, key=lambda c: c["score"] - c["threshold"])[:5]
    shown = [c for c in clips if not c["detected"]] + [c for c in weakest if c["detected"]]
    for c in shown:
        state = "MISSED" if not c["detected"] else "weak  "
        print(
            f"  {state} {c['file']} {c['voice']:14s} {c['seconds']:5.2f} s {c['level_dbfs']:6.1f} dBFS"
            f"  score {c['score']:5.2f} / {c['threshold']:4.2f}  match {c['match_score']}"
        )


def robustness(limit: int | None, real_limit: int | None, extra: bool, only: list[str], per_clip: bool) -> dict:
    generated = speech_corpus.generated(limit)
    real = speech_corpus.real(real_limit)
    transforms = {**TRANSFORMS, **EXTRA} if only else {**TRANSFORMS, **(EXTRA if extra else {})}
    unknown = sorted(set(only) - set(transforms))
    if unknown:
        raise SystemExit(f"unknown transformation(s) {unknown}; choose from {sorted(transforms)}")
    transforms = {name: transforms[name] for name in only} if only else transforms
    results: dict[str, dict] = {}
    clips: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        prov = provenance(Path(tmp), sorted({row["voice"] for row, _, _ in generated}))
        marked = [(row, prov.mark(AudioChunk(x, r, row["text"]), row["voice"]).samples, r) for row, x, r in generated]
        for name, transform in transforms.items():
            started = time.perf_counter()
            found, named, scores = [], [], []
            clips[name] = []
            for i, (row, y, r) in enumerate(marked):
                detection = prov.detect_audio(*transform(y, r, i))
                found.append(detection.watermarked)
                named.append(detection.voice_id == row["voice"])
                scores.append(detection.score)
                clips[name].append(
                    {
                        "file": row["file"],
                        "voice": row["voice"],
                        "seconds": row["seconds"],
                        "level_dbfs": _level_dbfs(y),
                        "score": round(detection.score, 2),
                        "threshold": round(detection.threshold, 2),
                        "detected": detection.watermarked,
                        "named": named[-1],
                        "match_score": None if detection.match_score is None else round(detection.match_score, 2),
                    }
                )
            false = [prov.detect_audio(*transform(x, r, 1000 + i)) for i, (_, x, r) in enumerate(real)]
            results[name] = {
                "detected_%": _rate(found),
                "identified_%": _rate(named),
                "clips": len(marked),
                "score_p1": round(float(np.percentile(scores, 1)), 2),
                "score_median": round(statistics.median(scores), 2),
                "false_positive_%": _rate([d.watermarked for d in false]),
                "real_clips": len(false),
                "real_score_max": round(max(d.score for d in false), 2),
                "wrongly_named": sum(d.voice_id is not None for d in false),
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(f"{name:22s} {json.dumps(results[name])}", flush=True)
            if per_clip:
                _report_clips(name, clips[name])
    if per_clip:
        OUT.mkdir(exist_ok=True)
        (OUT / "watermark-clips.json").write_text(json.dumps(clips, indent=1))
    return results


def audibility(limit: int | None) -> dict:
    """Marked vs unmarked: Whisper WER against the text, d-vector similarity, DNSMOS."""
    from speechmos import dnsmos

    from voxclone.asr import Transcriber, word_error_rate
    from voxclone.embedding import SpeakerEncoder

    def mos(x16: np.ndarray) -> float:
        return float(dnsmos.run(x16 / (float(np.abs(x16).max()) or 1.0) * 0.9, ANALYSIS_RATE)["ovrl_mos"])

    encoder, whisper = SpeakerEncoder(), Transcriber()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        generated = speech_corpus.generated(limit)
        prov = provenance(Path(tmp), sorted({row["voice"] for row, _, _ in generated}))
        for row, x, r in generated:
            y = prov.mark(AudioChunk(x, r, row["text"]), row["voice"]).samples
            x16, y16 = resample(x, r, ANALYSIS_RATE), resample(y, r, ANALYSIS_RATE)
            rows.append(
                {
                    "wer_plain": word_error_rate(row["text"], whisper.transcribe(x16, ANALYSIS_RATE)),
                    "wer_marked": word_error_rate(row["text"], whisper.transcribe(y16, ANALYSIS_RATE)),
                    "similarity": float(encoder.embed(x16, ANALYSIS_RATE) @ encoder.embed(y16, ANALYSIS_RATE)),
                    "dnsmos_plain": mos(x16),
                    "dnsmos_marked": mos(y16),
                    "snr_db": float(10 * np.log10(np.sum(x**2) / max(float(np.sum((y - x) ** 2)), 1e-12))),
                }
            )
    delta = [r["dnsmos_marked"] - r["dnsmos_plain"] for r in rows]
    summary = {
        "clips": len(rows),
        "wer_plain": round(statistics.mean(r["wer_plain"] for r in rows), 4),
        "wer_marked": round(statistics.mean(r["wer_marked"] for r in rows), 4),
        "similarity_mean": round(statistics.mean(r["similarity"] for r in rows), 4),
        "similarity_min": round(min(r["similarity"] for r in rows), 4),
        "dnsmos_plain": round(statistics.mean(r["dnsmos_plain"] for r in rows), 3),
        "dnsmos_marked": round(statistics.mean(r["dnsmos_marked"] for r in rows), 3),
        "dnsmos_delta_mean": round(statistics.mean(delta), 3),
        "dnsmos_delta_se": round(statistics.stdev(delta) / len(delta) ** 0.5, 3),
        "mark_snr_db_mean": round(statistics.mean(r["snr_db"] for r in rows), 1),
    }
    print(json.dumps(summary, indent=1))
    return summary


def cost(repeats: int) -> dict:
    """Seconds of marking per second of audio (the RTF it adds), and for a stream's first piece (the
    time to first audio it adds): a Kokoro-rate (24 kHz) piece of 1.5 s and a whole 8 s sentence."""
    with tempfile.TemporaryDirectory() as tmp:
        prov = provenance(Path(tmp), ["jm_kumo"])
        rows = speech_corpus.generated(40)
        clip = next(x for row, x, r in rows if r == 24_000 and len(x) > 8 * r)
        results = {}
        for label, seconds in (("first_piece_1.5s", 1.5), ("sentence_8s", 8.0)):
            chunk = AudioChunk(clip[: int(seconds * 24_000)], 24_000, "")
            prov.mark(chunk, "jm_kumo")  # warm
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                prov.mark(chunk, "jm_kumo")
                times.append(time.perf_counter() - started)
            results[label] = {
                "ms_median": round(1000 * statistics.median(times), 2),
                "ms_max": round(1000 * max(times), 2),
                "rtf_added": round(statistics.median(times) / seconds, 4),
            }
        started = time.perf_counter()
        prov.detect_audio(clip, 24_000)
        results["detect_8s_ms"] = round(1000 * (time.perf_counter() - started), 1)
    print(json.dumps(results, indent=1))
    return results


def _torchaudio_transforms() -> None:
    """The three torchaudio.transforms PerTh's audio processor builds, on torch.stft. They are modules
    with torchaudio's buffers (`window`, `phase_advance`): PerTh's checkpoint holds them, and loading it
    is strict."""
    import math
    import types

    import torch

    class _Stft(torch.nn.Module):
        def __init__(self, n_fft: int, win_length: int, hop_length: int, window_fn: Callable, **_: object) -> None:
            super().__init__()
            self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
            self.register_buffer("window", window_fn(win_length))

    class Spectrogram(_Stft):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stft(
                x, self.n_fft, self.hop_length, self.win_length, self.window, center=True, return_complex=True
            )

    class InverseSpectrogram(_Stft):
        def forward(self, spec: torch.Tensor) -> torch.Tensor:
            return torch.istft(spec, self.n_fft, self.hop_length, self.win_length, self.window, center=True)

    class TimeStretch(torch.nn.Module):  # used only in training; kept for its buffer
        def __init__(self, n_freq: int, hop_length: int, **_: object) -> None:
            super().__init__()
            self.register_buffer("phase_advance", torch.linspace(0, math.pi * hop_length, n_freq)[..., None])

    shim = types.ModuleType("torchaudio.transforms")
    shim.Spectrogram, shim.InverseSpectrogram, shim.TimeStretch = Spectrogram, InverseSpectrogram, TimeStretch  # type: ignore[attr-defined]
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    sys.modules["torchaudio.transforms"] = shim


def perth(limit: int | None, real_limit: int | None) -> dict:
    """resemble-perth (PerTh, a neural implicit watermark: one presence bit, no payload) on the same table,
    with its cost (seconds per second of audio, one thread) and the mark's SNR."""
    import torch

    _torchaudio_transforms()
    torch.set_num_threads(1)
    from perth.perth_net.perth_net_implicit.perth_watermarker import PerthImplicitWatermarker

    marker = PerthImplicitWatermarker(device="cpu")
    generated, real = speech_corpus.generated(limit), speech_corpus.real(real_limit)
    audio_s = sum(len(x) / r for _, x, r in generated)
    started = time.perf_counter()
    marked = [(np.asarray(marker.apply_watermark(x, sample_rate=r), np.float32), r) for _, x, r in generated]
    embed_rtf = (time.perf_counter() - started) / audio_s

    def score(x: np.ndarray, r: int) -> float:
        return float(np.mean(marker.get_watermark(x.astype(np.float32), sample_rate=r, round=False)))

    started = time.perf_counter()
    for y, r in marked:
        score(y, r)
    detect_rtf = (time.perf_counter() - started) / audio_s
    snr = []
    for (_, x, _), (y, _) in zip(generated, marked, strict=True):
        n = min(len(x), len(y))  # the inverse STFT may drop a few samples at the end
        snr.append(float(10 * np.log10(np.sum(x[:n] ** 2) / max(float(np.sum((y[:n] - x[:n]) ** 2)), 1e-12))))
    results: dict[str, dict] = {
        "cost": {"embed_rtf": round(embed_rtf, 4), "detect_rtf": round(detect_rtf, 4), "audio_s": round(audio_s, 1)},
        "mark_snr_db": {"mean": round(statistics.mean(snr), 1), "min": round(min(snr), 1)},
    }
    print(json.dumps(results), flush=True)
    for name, transform in TRANSFORMS.items():
        started = time.perf_counter()
        scores = [score(*transform(y, r, i)) for i, (y, r) in enumerate(marked)]
        false = [score(*transform(x, r, 1000 + i)) for i, (_, x, r) in enumerate(real)]
        results[name] = {
            "detected_%": _rate([s > 0.5 for s in scores]),
            "false_positive_%": _rate([s > 0.5 for s in false]),
            "clips": len(scores),
            "real_clips": len(false),
            "score_p1": round(float(np.percentile(scores, 1)), 3),
            "score_median": round(statistics.median(scores), 3),
            "real_score_max": round(max(false), 3),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"{name:22s} {json.dumps(results[name])}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("robustness", "audibility", "cost", "perth"))
    parser.add_argument("--clips", type=int, default=None, help="Generated clips (default: all 200).")
    parser.add_argument("--real", type=int, default=None, help="Real recordings (default: all 251).")
    parser.add_argument("--extra", action="store_true", help="Also harsher transformations than the bar asks for.")
    parser.add_argument("--only", default="", help="Only these transformations (comma-separated names).")
    parser.add_argument("--per-clip", action="store_true", help="Report each clip (misses and weakest printed).")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    if args.what == "robustness":
        only = [name for name in args.only.split(",") if name]
        result = robustness(args.clips, args.real, args.extra, only, args.per_clip)
    elif args.what == "audibility":
        result = audibility(args.clips)
    elif args.what == "cost":
        result = cost(args.repeats)
    else:
        result = perth(args.clips, args.real)
    OUT.mkdir(exist_ok=True)
    (OUT / f"watermark-{args.what}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
