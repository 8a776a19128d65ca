"""Kokoro's deep clone as a cloner of the contract: tier "deep", refining the voice's instant clone.

The fit runs as its own process on a job folder (job.py): niced, its threads bounded, never in the
server's event loop or its synthesis threads, and never holding the speech worker pool (it has its own
copy of the engine for the final check). This module only lays out the folder, starts the process,
follows `progress.json`, and reads the verdict; it imports neither torch nor the fit, so the server
loads it without the `deep` extra, which the cloner then says it lacks.

A cancelled job (its voice deleted) or a stopping server kills the process; the job then runs again on
the same folder after a restart, and the process resumes from its last checkpoint. The alignment and the
checkpoint (`checkpoints`, about 0.7 MB, and the aligned audio, about 0.1 MB per second of reference) are
also copied where the job lives (voxclone.jobs.Checkpoints), so a worker on another machine that takes
the job over resumes from them too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...cloning import ClonedVoice, CloneFailed, CloneJob, Cloner, NotBetter
from ...errors import BadInput, EngineUnavailable
from ...settings import Settings
from ..kokoro import KokoroEngine
from .job import ARTEFACT_FILE, CHECKPOINT_FILE, JOB_FILE, PREPARED_FILE, RESULT_FILE, read_progress, write_job

POLL_S = 1.0
CHECK_S = 30.0  # about what the final check (both voices speak and are transcribed) adds to the fit's own estimate
NICE = 10  # the fit yields the CPU to the server's synthesis
_MESSAGES = {
    "aligning": "aligning the reference to its transcript",
    "checking": "comparing the deep voice with the instant clone",
    "done": "finished",
    "failed": "failed",
}
# What the verdict's scores are called on the voice (voxclone.engines.kokoro_deep.accept).
_SCORES = {
    "similarity_deep": "deep_similarity",
    "similarity_instant": "deep_similarity_instant",
    "similarity_deep_unfiltered": "deep_similarity_unfiltered",
    "wer_deep": "deep_wer",
    "wer_instant": "deep_wer_instant",
    "held_out_loss_deep": "deep_held_out_loss",
    "held_out_loss_start": "deep_held_out_loss_start",
}


def _missing_extra() -> str | None:
    missing = [name for name in ("torch", "kokoro", "transformers") if importlib.util.find_spec(name) is None]
    return f"the deep clone needs the `deep` extra (missing: {', '.join(missing)})" if missing else None


class DeepCloner(Cloner):
    """Fits the decoder's AdaIN biases and the style's timbre to the speaker, starting from the instant clone."""

    engine = "kokoro"
    tier = "deep"
    refines = True
    checkpoints = (PREPARED_FILE, CHECKPOINT_FILE)

    def __init__(self, budget_s: float = 600.0, threads: int = 0, options: dict[str, Any] | None = None) -> None:
        """`options` are FitOptions fields (fit.py) over the defaults; `budget_s` is the fit's wall time."""
        self.threads = threads or os.cpu_count() or 1
        self.options = {"time_budget_s": budget_s, **(options or {})}

    @classmethod
    def from_settings(cls, settings: Settings) -> DeepCloner:
        missing = _missing_extra()
        if missing:  # listed as not installed, so a request for it is refused at once with what is installed
            raise EngineUnavailable(missing)
        return cls(settings.deep_fit_budget_s, settings.deep_threads)

    def clone(self, job: CloneJob) -> ClonedVoice:
        engine = job.engine
        if not isinstance(engine, KokoroEngine):
            raise BadInput(f"the deep tier fits Kokoro voices, not {type(engine).__name__}")
        current = job.current
        if current is None or "style_file" not in current.params or current.params["style_file"] not in current.files:
            raise BadInput("a deep clone refines an instant clone (a Kokoro style table); clone the voice first")
        if not (job.workdir / JOB_FILE).exists():  # else: a restarted job, resumed from its folder as it was
            style = np.load(io.BytesIO(current.files[current.params["style_file"]]), allow_pickle=False)
            write_job(
                job.workdir,
                engine.model_file(),
                [(r.audio, r.sample_rate, r.transcript) for r in job.references],
                style,
                current.filters,
                self.options,
                threads=self.threads,
                runtime=engine.runtime,
                graph_cache=engine.graph_cache_dir,
            )
        process = self._start(job.workdir)
        try:
            self._follow(process, job)
        except BaseException:  # cancelled, or the server stops: the fit stops now (a restart resumes it)
            process.kill()
            process.wait()
            raise
        return self._outcome(process.returncode, job)

    def _start(self, folder: Path) -> subprocess.Popen[bytes]:
        threads = str(self.threads)
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        with open(folder / "fit.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "voxclone.engines.kokoro_deep", str(folder)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C reaches the server, which then stops the fit itself
            )
        with contextlib.suppress(OSError):  # niced at once, before it loads anything (the process nices itself too)
            os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + NICE)
        return process

    @staticmethod
    def _follow(process: subprocess.Popen[bytes], job: CloneJob) -> None:
        while process.poll() is None:
            progress = read_progress(job.workdir)
            state = progress.get("state", "starting")
            if state == "fitting":
                message = (
                    f"fitting, step {progress.get('step', 0)}, held-out loss {progress.get('held_out_loss', 0.0):.3f}"
                )
                eta = float(progress.get("eta_s", 0.0)) + CHECK_S
            else:
                message, eta = _MESSAGES.get(state, "starting the fit"), None
            job.progress(float(progress.get("fraction", 0.0)), message, eta_s=eta)
            time.sleep(POLL_S)

    @staticmethod
    def _outcome(returncode: int, job: CloneJob) -> ClonedVoice:
        try:
            result = json.loads((job.workdir / RESULT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = None
        if returncode != 0 or result is None:
            reason = read_progress(job.workdir).get("message") or f"the fit process ended with status {returncode}"
            raise CloneFailed(f"the deep fit failed: {reason}")
        scores = {_SCORES[k]: float(v) for k, v in result.get("scores", {}).items() if k in _SCORES}
        fit = result.get("fit", {})
        scores.update(deep_steps=float(fit.get("steps", 0)), deep_fit_s=float(fit.get("seconds", 0.0)))
        if not result["accepted"]:
            raise NotBetter(result["reason"], scores)
        current = job.current
        assert current is not None
        return ClonedVoice(
            params={"deep_file": ARTEFACT_FILE},
            files={ARTEFACT_FILE: (job.workdir / ARTEFACT_FILE).read_bytes()},
            filters=list(result.get("filters", [])),
            scores={**current.scores, **scores},
        )
