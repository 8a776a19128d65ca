"""A deep fit as a folder: inputs in, progress, checkpoints and the voice out, so a process can run it.

The server (or the CLI) writes the inputs and starts `python -m voxclone.engines.kokoro_deep JOB_DIR` as a
child process; it reads `progress.json` to show progress, kills the process to cancel, and starts it
again on the same folder after a restart: alignment is kept in `prepared.npz` and the fit resumes from
`checkpoint.pt`. Every file is written to a temporary name and renamed, so a kill never leaves half a file.

Inputs
- `job.json`: {"model": "/path/kokoro-v1.0.int8.onnx", "references": [{"audio": "ref-0.wav", "transcript": "..." | null}, ...],
  "style": "style.npy", "filters": [...], "options": {FitOptions fields}, "threads": 2, "nice": 10,
  "runtime": "onnxruntime", "graph_cache": "/path" | null} (the runtime and graph cache the server speaks
  with, so the final check hears both voices as they will be served)
- the reference recordings (prepared: speech only, loudness-normalised, any rate) and the instant
  clone's style table (510x256 .npy); `filters` are the instant clone's filter specs (voxclone.filters).

Outputs
- `progress.json`: {"state": "aligning" | "fitting" | "checking" | "done" | "failed", "fraction",
  "step", "held_out_loss", "eta_s", "message"}
- `deep.npz` (artefact.py) and `result.json`: {"accepted", "reason", "scores"}; the voice switches to
  `deep.npz` only when "accepted" is true.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .fit import FitOptions

JOB_FILE = "job.json"
PROGRESS_FILE = "progress.json"
RESULT_FILE = "result.json"
ARTEFACT_FILE = "deep.npz"
CHECKPOINT_FILE = "checkpoint.pt"
PREPARED_FILE = "prepared.npz"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic JSON write."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, default=float), encoding="utf-8")
    os.replace(tmp, path)


def read_progress(job_dir: Path) -> dict[str, Any]:
    """The job's last progress report ({} before the process wrote one)."""
    try:
        return json.loads((job_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@dataclass
class JobSpec:
    model: Path  # the shipped int8 graph (kokoro.assemble_model)
    references: list[tuple[Path, str | None]]
    style: np.ndarray
    filters: list[dict[str, Any]]
    options: FitOptions
    threads: int = 2
    nice: int = 10
    runtime: str = "onnxruntime"
    graph_cache: Path | None = None

    @classmethod
    def read(cls, job_dir: Path) -> JobSpec:
        from .fit import FitOptions  # torch: only the fitting process reads a job

        raw = json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
        known = {f.name for f in fields(FitOptions)}
        unknown = set(raw.get("options", {})) - known
        if unknown:
            raise ValueError(f"unknown fit options {sorted(unknown)}; choose from {sorted(known)}")
        return cls(
            model=Path(raw["model"]),
            references=[(job_dir / r["audio"], r.get("transcript")) for r in raw["references"]],
            style=np.load(job_dir / raw["style"], allow_pickle=False).astype(np.float32),
            filters=raw.get("filters", []),
            options=FitOptions(**raw.get("options", {})),
            threads=int(raw.get("threads", 2)),
            nice=int(raw.get("nice", 10)),
            runtime=raw.get("runtime", "onnxruntime"),
            graph_cache=Path(raw["graph_cache"]) if raw.get("graph_cache") else None,
        )


def write_job(
    job_dir: Path,
    model: Path,
    references: list[tuple[np.ndarray, int, str | None]],
    style: np.ndarray,
    filters: list[dict[str, Any]],
    options: dict[str, Any] | None = None,
    threads: int = 2,
    runtime: str = "onnxruntime",
    graph_cache: Path | None = None,
) -> None:
    """Lay out a job folder from in-memory inputs (what an enrolment job or the CLI has at hand); job.json
    last, so a folder with a job.json holds the whole job."""
    import soundfile as sf

    job_dir.mkdir(parents=True, exist_ok=True)
    refs = []
    for i, (audio, rate, transcript) in enumerate(references):
        name = f"ref-{i}.wav"
        sf.write(job_dir / name, np.asarray(audio, np.float32), rate, subtype="FLOAT")
        refs.append({"audio": name, "transcript": transcript})
    np.save(job_dir / "style.npy", np.asarray(style, np.float32))
    spec = {
        "model": str(model),
        "references": refs,
        "style": "style.npy",
        "filters": filters,
        "options": options or {},
        "threads": threads,
        "runtime": runtime,
        "graph_cache": None if graph_cache is None else str(graph_cache),
    }
    write_json(job_dir / JOB_FILE, spec)


class Reporter:
    """Writes progress.json, at most every `every` seconds unless the state changes."""

    def __init__(self, job_dir: Path, every: float = 1.0) -> None:
        self._path = job_dir / PROGRESS_FILE
        self._every = every
        self._last = 0.0
        self._state = ""

    def __call__(self, state: str, fraction: float, message: str = "", **extra: Any) -> None:
        now = time.monotonic()
        if state == self._state and now - self._last < self._every:
            return
        self._state, self._last = state, now
        write_json(self._path, {"state": state, "fraction": round(fraction, 4), "message": message, **extra})
