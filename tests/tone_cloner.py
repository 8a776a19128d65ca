"""Cloners for the tone engine, for quick enrolment tests: real jobs through the real enrolment path.

`ToneCloner` makes a tone voice whose pitch is the reference speaker's median pitch; `FailingCloner`
fails after an optional wait, as a broken or slow clone would.
"""

from __future__ import annotations

import io
import time

import numpy as np
from make_tone_model import write

from voxclone.cloning import ClonedVoice, CloneJob, Cloner
from voxclone.errors import BadAudio
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
        return ClonedVoice(params={"model": "voice.tone.npz"}, files={"voice.tone.npz": model.getvalue()},
                           scores={"f0_reference": round(float(np.median(f0)), 1)})


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
