"""`engine=openvoice`: a voice made of a base voice (Kokoro's jm_kumo by default) and the reference
speaker's OpenVoice tone colour, applied by the converter filter (voxclone.filters.openvoice)."""

from __future__ import annotations

from functools import partial

import numpy as np

from ..errors import BadAudio
from ..filters.openvoice import MODEL, ToneColour, converter
from ..settings import Settings
from ..weights import locate
from .base import ClonedVoice, CloneJob, Cloner


class OpenVoiceCloner(Cloner):
    """The tone colour of the references, averaged over them, as an openvoice filter over the base voice."""

    engine = "openvoice"
    tier = "instant"
    weights = (MODEL,)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_voice = settings.openvoice_base_voice

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenVoiceCloner:
        return cls(settings)

    def clone(self, job: CloneJob) -> ClonedVoice:
        folder, _ = locate(self.settings, MODEL)
        job.progress(0.1, "loading OpenVoice's converter")
        model = converter(folder)  # EngineUnavailable with the fix when its weights or coqui-tts are missing
        embeddings = []
        for index, reference in enumerate(job.references):
            embeddings.append(job.run(partial(model.embedding, reference.audio, reference.sample_rate)))
            job.progress(0.2 + 0.7 * (index + 1) / len(job.references), "measuring tone colour")
        target = np.mean(embeddings, axis=0)
        if not np.isfinite(target).all():
            raise BadAudio("the recordings gave no usable tone colour; record again with clearer speech")
        return ClonedVoice(params={}, filters=[ToneColour(folder, target).spec()])
