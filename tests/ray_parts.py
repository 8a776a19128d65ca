"""What the Ray Serve tests' replicas are built with (`Options(parts="ray_parts:parts")`): the tone
engine, slowed to a fixed time per piece so a stream is still in flight when a replica is killed, and
the tone cloner, slowed so an enrolment job is still running when its worker is killed."""

from __future__ import annotations

import time
from collections.abc import Iterator

from tone_cloner import ToneCloner

from voxclone.cloning import ClonedVoice, CloneJob, Cloners
from voxclone.engines import AudioChunk, Engines, SpeakOptions, VoiceSpec
from voxclone.engines.tone import ToneEngine
from voxclone.runtime import Parts

PIECE_S = 0.4  # each engine call takes this long, like a real model on a busy CPU
CLONE_S = 5.0


class SlowToneEngine(ToneEngine):
    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        time.sleep(PIECE_S)
        yield from super().synthesize(text, voice, options)


class SlowToneCloner(ToneCloner):
    def clone(self, job: CloneJob) -> ClonedVoice:
        deadline = time.monotonic() + CLONE_S
        while time.monotonic() < deadline:
            job.progress(0.05, "listening")  # a killed worker's job stops being renewed here
            time.sleep(0.1)
        return super().clone(job)


def parts() -> Parts:
    return Parts(engines=Engines({"tone": SlowToneEngine()}), cloners=Cloners([SlowToneCloner()]))
