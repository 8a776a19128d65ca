"""Cloners for the tone engine, for quick enrolment tests: real jobs through the real enrolment path.

`ToneCloner` makes a tone voice whose pitch is the reference speaker's median pitch; `FailingCloner`
fails after an optional wait, as a broken or slow clone would. `ToneRefiner` is a refining tier (as the
deep clone is): it steps through a fit with a checkpoint in its work folder, so a restart, or a worker
elsewhere that takes the job over, resumes it, then ends as the test asks: a new voice an octave up, a voice judged no better, or a failure.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Literal

import numpy as np
from make_tone_model import write

from voxclone.cloning import ClonedVoice, CloneFailed, CloneJob, Cloner, NotBetter
from voxclone.errors import BadAudio
from voxclone.files import atomic_write
from voxclone.spectrum import f0_track, to_analysis_rate


class ToneCloner(Cloner):
    engine = "tone"
    tier = "instant"

    def clone(self, job: CloneJob) -> ClonedVoice:
        job.progress(0.1, "measuring pitch")
        f0 = np.concatenate([f0_track(to_analysis_rate(r.audio, r.sample_rate), robust=True) for r in job.references])
        if f0.size == 0:
            raise BadAudio("no voiced speech in the references")
        job.progress(0.6, "writing the voice")
        model = io.BytesIO()
        write(model, base_hz=float(np.median(f0)))
        return ClonedVoice(
            params={"model": "voice.tone.npz"},
            files={"voice.tone.npz": model.getvalue()},
            scores={"f0_reference": round(float(np.median(f0)), 1)},
        )


class FailingCloner(Cloner):
    engine = "tone"
    tier = "instant"

    def __init__(self, wait_s: float = 0.0) -> None:
        self.wait_s = wait_s
        self.started = 0

    def clone(self, job: CloneJob) -> ClonedVoice:
        self.started += 1
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            job.progress(0.5, "waiting")  # a cancelled job stops here
            time.sleep(0.05)
        raise BadAudio("stopped by the test")


class ToneRefiner(Cloner):
    engine = "tone"
    tier = "deep"
    refines = True
    checkpoints = ("step.txt",)

    def __init__(
        self, steps: int = 20, step_s: float = 0.05, outcome: Literal["better", "not better", "fail"] = "better"
    ) -> None:
        self.steps, self.step_s, self.outcome = steps, step_s, outcome
        self.resumed_from: list[int] = []  # the checkpointed step each run started at
        self.stopped = threading.Event()  # set when a run ends, however it ends

    def clone(self, job: CloneJob) -> ClonedVoice:
        assert job.current is not None and "model" in job.current.params  # it refines the instant clone
        self.stopped.clear()
        job.workdir.mkdir(parents=True, exist_ok=True)
        checkpoint = job.workdir / "step.txt"
        step = int(checkpoint.read_text()) if checkpoint.exists() else 0
        self.resumed_from.append(step)
        try:
            while step < self.steps:
                time.sleep(self.step_s)
                step += 1
                atomic_write(checkpoint, str(step).encode())
                job.progress(step / self.steps, f"fitting, step {step}", eta_s=(self.steps - step) * self.step_s)
        finally:
            self.stopped.set()
        if self.outcome == "not better":
            raise NotBetter("not closer to the speaker", {"deep_similarity": 0.1})
        if self.outcome == "fail":
            raise CloneFailed("the deep fit failed: stopped by the test")
        model = io.BytesIO()
        write(model, base_hz=440.0)
        return ClonedVoice(
            params={"model": "deep.tone.npz"},
            files={"deep.tone.npz": model.getvalue()},
            scores={**job.current.scores, "deep_similarity": 0.9},
        )
