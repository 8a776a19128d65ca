"""How close a voice is to the speaker it imitates: similarity, intelligibility, quality, speed.

Scores the voice speaking sentences that are not in the reference against recordings of the
speaker: speaker similarity with the voicefilter d-vector and, when the `judge` extra (resemblyzer,
GE2E) is installed, with GE2E too; Whisper word error rate; DNSMOS; real-time factor. Writes a
one-file HTML report with plots.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .asr import word_error_rate
from .audio import ANALYSIS_RATE, resample
from .embedding import normalise
from .runtime import Runtime
from .spectrum import f0_track
from .speech import SpeechRequest

# Probe sentences: phonetically varied, and not what anyone reads when enrolling.
PROBES = (
    "The north wind and the sun were disputing which was the stronger.",
    "Could you bring the blue folder to the meeting on Thursday afternoon?",
    "We walked along the quiet harbour while the boats rocked gently.",
    "Her brother fixed the old radio with nothing but a paperclip.",
    "Seven bright lanterns hung above the crowded market square.",
)


@dataclass
class SentenceScore:
    text: str
    similarity: float  # voicefilter d-vector cosine to the references
    similarity_ge2e: float | None
    wer: float
    dnsmos: float | None
    rtf: float


@dataclass
class Evaluation:
    voice: str
    sentences: list[SentenceScore]
    f0_voice: list[float] = field(default_factory=list)
    f0_reference: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def mean(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return round(float(np.mean(present)), 4) if present else None

        s = self.sentences
        return {
            "voice": self.voice,
            "similarity": mean([x.similarity for x in s]),
            "similarity_ge2e": mean([x.similarity_ge2e for x in s]),
            "wer": mean([x.wer for x in s]),
            "dnsmos": mean([x.dnsmos for x in s]),
            "rtf": mean([x.rtf for x in s]),
            "f0_median_voice": round(float(np.median(self.f0_voice)), 1) if self.f0_voice else None,
            "f0_median_reference": round(float(np.median(self.f0_reference)), 1) if self.f0_reference else None,
        }


def _ge2e() -> Callable[[np.ndarray], np.ndarray] | None:
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError:
        return None
    encoder = VoiceEncoder(device="cpu", verbose=False)
    return lambda x16: np.asarray(encoder.embed_utterance(preprocess_wav(x16, source_sr=ANALYSIS_RATE)), np.float32)


def _dnsmos(x16: np.ndarray) -> float | None:
    try:
        from speechmos import dnsmos
    except ImportError:
        return None
    peak = float(np.abs(x16).max()) or 1.0
    return float(dnsmos.run(x16 / peak * 0.9, ANALYSIS_RATE)["ovrl_mos"])


def evaluate(
    runtime: Runtime,
    voice: str,
    references: list[tuple[np.ndarray, int]],
    progress: Callable[[float], None] | None = None,
    sentences: int = len(PROBES),
) -> Evaluation:
    """Score `voice` speaking the first `sentences` probes against reference recordings (audio, rate). Blocking."""
    probes = PROBES[: max(1, sentences)]
    report = progress or (lambda f: None)
    refs16 = [resample(a, r, ANALYSIS_RATE) for a, r in references]
    encoder = runtime.listeners.encoder
    transcriber = runtime.listeners.transcriber
    ge2e = _ge2e()
    ref_dvec = normalise(np.mean([encoder.embed(x, ANALYSIS_RATE) for x in refs16], axis=0))
    ref_ge2e = normalise(np.mean([ge2e(x) for x in refs16], axis=0)) if ge2e else None
    result = Evaluation(voice=voice, sentences=[], f0_reference=np.concatenate([f0_track(x) for x in refs16]).tolist())
    for index, text in enumerate(probes):
        started = time.perf_counter()
        spoken = asyncio.run(runtime.speech.audio(SpeechRequest(text=text, voice=voice), use_cache=False))
        rtf = (time.perf_counter() - started) / spoken.seconds
        x16 = resample(spoken.samples, spoken.sample_rate, ANALYSIS_RATE)
        result.sentences.append(
            SentenceScore(
                text=text,
                similarity=float(encoder.embed(x16, ANALYSIS_RATE) @ ref_dvec),
                similarity_ge2e=float(normalise(ge2e(x16)) @ ref_ge2e) if ge2e and ref_ge2e is not None else None,
                wer=word_error_rate(text, transcriber.transcribe(x16, ANALYSIS_RATE)),
                dnsmos=_dnsmos(x16),
                rtf=rtf,
            )
        )
        result.f0_voice.extend(f0_track(x16).tolist())
        report((index + 1) / len(probes))
    return result


def _plot_png(draw: Callable[[Any], None]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=110)
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def write_report(evaluation: Evaluation, path: Path) -> None:
    """A self-contained HTML report: summary table, similarity per sentence, pitch distributions."""
    summary = evaluation.summary()
    s = evaluation.sentences

    def similarity_plot(ax: Any) -> None:
        xs = np.arange(len(s))
        ax.bar(xs - 0.2, [x.similarity for x in s], 0.4, label="d-vector (voicefilter)")
        if any(x.similarity_ge2e is not None for x in s):
            ax.bar(xs + 0.2, [x.similarity_ge2e or 0 for x in s], 0.4, label="GE2E (resemblyzer)")
        ax.set_xticks(xs, [f"S{i + 1}" for i in xs])
        ax.set_ylim(0, 1)
        ax.set_ylabel("cosine to reference")
        ax.set_title("Speaker similarity per sentence")
        ax.legend(loc="lower right")

    def pitch_plot(ax: Any) -> None:
        bins = np.linspace(60, 400, 60)
        ax.hist(evaluation.f0_reference, bins=bins, alpha=0.6, density=True, label="reference")
        ax.hist(evaluation.f0_voice, bins=bins, alpha=0.6, density=True, label=evaluation.voice)
        ax.set_xlabel("F0 (Hz)")
        ax.set_title("Pitch distribution")
        ax.legend()

    rows = "".join(
        f"<tr><td>S{i + 1}</td><td>{html.escape(x.text)}</td><td>{x.similarity:.3f}</td>"
        f"<td>{'' if x.similarity_ge2e is None else f'{x.similarity_ge2e:.3f}'}</td><td>{x.wer:.2f}</td>"
        f"<td>{'' if x.dnsmos is None else f'{x.dnsmos:.2f}'}</td><td>{x.rtf:.3f}</td></tr>"
        for i, x in enumerate(s)
    )
    summary_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items()
    )
    page = f"""<!doctype html><html lang="en"><meta charset="utf-8"><title>voxclone evaluation: {html.escape(evaluation.voice)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}img{{max-width:100%}}</style>
<h1>Evaluation of voice {html.escape(evaluation.voice)}</h1><table>{summary_rows}</table>
<h2>Per sentence</h2><table><tr><th></th><th>sentence</th><th>d-vector</th><th>GE2E</th><th>WER</th><th>DNSMOS</th><th>RTF</th></tr>{rows}</table>
<h2>Plots</h2><img alt="similarity per sentence" src="data:image/png;base64,{_plot_png(similarity_plot)}">
<img alt="pitch distribution of the voice and the reference" src="data:image/png;base64,{_plot_png(pitch_plot)}">
</html>"""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)


__all__ = ["PROBES", "Evaluation", "SentenceScore", "evaluate", "write_report"]
