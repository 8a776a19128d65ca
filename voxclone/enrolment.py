"""Voice enrolment: store a voice's samples, clone it off the request path, report progress.

A bounded pool runs enrolments (settings.enrolment_workers at once, settings.enrolment_queue
waiting); more are refused with LimitExceeded rather than queued without bound. Samples are on disk
before the job starts, so a restart resumes any voice left `enrolling` from its own samples.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from .cloning.prepare import SAMPLE_RATE, Sample, check_total, prepare
from .errors import BadInput, LimitExceeded, VoxcloneError
from .synthesis import Speaker
from .voices import Voice

log = logging.getLogger("voxclone.enrolment")
CloneFn = Callable[..., Any]
_PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class Upload:
    """One uploaded file as the front ends hand it over."""

    file_name: str
    data: bytes
    transcript: str | None = None


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy" to the temporary name
        np.save(f, array)


def samples_dir(folder: Path) -> Path:
    return folder / "samples"


def list_samples(folder: Path | None) -> list[dict[str, Any]]:
    """The stored samples of a voice: id, original file name, seconds of speech, transcript."""
    if folder is None or not samples_dir(folder).is_dir():
        return []
    out = []
    for meta in sorted(samples_dir(folder).glob("*.json")):
        info = json.loads(meta.read_text())
        if (meta.with_suffix(".wav")).exists():
            out.append(info)
    return out


def _store(folder: Path, sample: Sample) -> None:
    directory = samples_dir(folder)
    directory.mkdir(parents=True, exist_ok=True)
    sample_id = f"{int(time.time() * 1000):013d}-{secrets.token_hex(3)}"
    # Audio first, metadata last: a sample is only listed once both are complete.
    _atomic_write(directory / f"{sample_id}.wav", lambda p: soundfile.write(p, sample.audio, SAMPLE_RATE, format="WAV", subtype="PCM_16"))
    info = {"sample_id": sample_id, "file_name": sample.file_name[:200], "duration_s": round(sample.speech_seconds, 2), "transcript": sample.transcript}
    _atomic_write(directory / f"{sample_id}.json", lambda p: p.write_text(json.dumps(info)))


def _load_references(folder: Path) -> list[Any]:
    from .cloning import Reference

    refs = []
    for info in list_samples(folder):
        audio, rate = soundfile.read(samples_dir(folder) / f"{info['sample_id']}.wav", dtype="float32")
        refs.append(Reference(audio=audio, sample_rate=rate, transcript=info.get("transcript")))
    return refs


def parse_labels(raw: str | None) -> dict[str, str]:
    """ElevenLabs sends labels as a JSON object string; `key=value,key=value` is accepted too."""
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        pairs = [part.split("=", 1) for part in raw.split(",") if part.strip()]
        if not all(len(p) == 2 for p in pairs):
            raise BadInput('labels must be a JSON object like {"accent": "british"} or key=value pairs') from None
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict) or len(value) > 20:
        raise BadInput("labels must be an object of at most 20 entries")
    return {str(k)[:50]: str(v)[:100] for k, v in value.items()}


class Enroller:
    """Clones voices in the background and keeps their library entries up to date."""

    def __init__(self, speaker: Speaker, clone: CloneFn | None = None) -> None:
        self.speaker = speaker
        self.settings = speaker.settings
        self._clone = clone
        self._executor = ThreadPoolExecutor(self.settings.enrolment_workers, thread_name_prefix="voxclone-enrol")
        self._capacity = self.settings.enrolment_workers + self.settings.enrolment_queue
        self._pending = 0
        self._lock = threading.Lock()

    def _clone_fn(self) -> CloneFn:
        if self._clone is None:
            from .cloning import clone_voice

            self._clone = clone_voice
        return self._clone

    def _reserve(self) -> None:
        with self._lock:
            if self._pending >= self._capacity:
                raise LimitExceeded(
                    f"{self._pending} enrolments are already running or queued; try again in a minute",
                    limit="enrolment_queue", retry_after=30,
                )
            self._pending += 1

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    def _prepare(self, uploads: list[Upload]) -> list[Sample]:
        if not uploads:
            raise BadInput("upload at least one audio file in `files`")
        return [prepare(u.data, u.file_name, max_seconds=self.settings.max_upload_seconds, transcript=u.transcript) for u in uploads]

    def add_voice(self, *, name: str, uploads: list[Upload], description: str = "", labels: dict[str, str] | None = None) -> Voice:
        """Check and store the samples, create the voice as `enrolling`, and queue its cloning. Blocking."""
        self._reserve()
        try:
            samples = self._prepare(uploads)
            check_total(samples, self.settings.min_speech_seconds)
            library = self.speaker.library
            voice = library.create(
                name=name, engine="kokoro", params={}, category="cloned", labels=labels, description=description, status="enrolling"
            )
            folder = library.files_dir(voice.id)
            try:
                for sample in samples:
                    _store(folder, sample)
            except OSError as e:  # disk full or similar: leave nothing half-made
                library.delete(voice.id)
                raise BadInput(f"could not store the samples: {e.strerror}") from e
        except BaseException:
            self._release()
            raise
        self._executor.submit(self._run, voice.id)
        return library.get(voice.id)

    def add_samples(self, voice_id: str, uploads: list[Upload]) -> Voice:
        """Add recordings to a cloned voice and re-enrol it with all of its samples. Blocking."""
        voice = self.speaker.library.get(voice_id)
        if voice.category != "cloned":
            raise BadInput(f"voice {voice.name!r} is a {voice.category} voice; only cloned voices take samples")
        if voice.status == "enrolling":
            raise BadInput(f"voice {voice.name!r} is still enrolling; add samples when it is ready")
        self._reserve()
        try:
            samples = self._prepare(uploads)
            folder = self.speaker.library.files_dir(voice.id)
            for sample in samples:
                _store(folder, sample)
            self.speaker.library.update(voice.id, status="enrolling", progress=0.0, error=None)
        except BaseException:
            self._release()
            raise
        self._executor.submit(self._run, voice.id)
        return self.speaker.library.get(voice.id)

    def resume_interrupted(self) -> None:
        """At start-up: voices a stopped process left `enrolling` are enrolled again from their samples."""
        for voice in self.speaker.library.interrupted():
            if voice.files_dir is not None and list_samples(voice.files_dir):
                log.info("resuming enrolment of voice %s", voice.id)
                with self._lock:
                    self._pending += 1
                self._executor.submit(self._run, voice.id)
            else:
                self.speaker.library.update(voice.id, status="failed", error="enrolment was interrupted and no samples were stored; add the voice again")

    def _run(self, voice_id: str) -> None:
        library = self.speaker.library
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last[0] >= _PROGRESS_EVERY_S:
                last[0] = now
                library.update(voice_id, progress=round(min(max(fraction, 0.0), 0.99), 3))

        try:
            folder = library.files_dir(voice_id)
            references = _load_references(folder)
            check_total([Sample(r.audio, "", r.audio.size / r.sample_rate) for r in references], self.settings.min_speech_seconds)
            result = self._clone_fn()(
                self.speaker.engines["kokoro"], references, progress=progress, time_budget_s=self.settings.enrolment_time_budget_s
            )
            _atomic_write(folder / "style.npy", lambda p: _save_npy(p, np.asarray(result.style, np.float32)))
            params = {"style_file": "style.npy", "post": result.post}
            scores = {k: float(v) for k, v in result.scores.items()}
            library.update(voice_id, params=params, scores=scores, status="ready", progress=1.0, error=None, bump_version=True)
            self.speaker.cache.drop_voice(voice_id)
        except Exception as e:  # the voice must end ready or failed, never stuck `enrolling`
            message = str(e) if isinstance(e, VoxcloneError) else f"enrolment failed ({type(e).__name__}); see the server log"
            if not isinstance(e, VoxcloneError):
                log.exception("enrolment of voice %s failed", voice_id)
            try:
                had_style = "style_file" in library.get(voice_id).params
                library.update(voice_id, status="ready" if had_style else "failed", error=message, progress=1.0 if had_style else 0.0)
            except VoxcloneError:
                pass  # deleted meanwhile
        finally:
            self._release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
