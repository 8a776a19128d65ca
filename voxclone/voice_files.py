"""Voices made from a model file a user uploads (a Bark `.npz` prompt, a Kokoro `.npy` style table...),
each read by the engine that knows its kind, as VOXCLONE_EXTRA_VOICE_PATHS does for files on disk.

The engine is found and the file checked in a scratch folder first; then the voice is created and the
file stored among its files (voxclone.blobs). A failure to store it deletes the voice again, and a
crash in between leaves a voice row whose file the engine reports missing, never a half-written file.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from .engines import Engines
from .errors import BadInput
from .voices import Voice, VoiceLibrary, check_name

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class VoiceFiles:
    """Adds `file` voices from uploaded model files."""

    def __init__(self, library: VoiceLibrary, engines: Engines) -> None:
        self.library = library
        self.engines = engines

    def add(self, *, name: str, file_name: str, data: bytes, description: str = "") -> Voice:
        """Store the file and make it a voice of the engine that reads it; BadInput if none does. Blocking."""
        name = check_name(name)
        safe = _SAFE_NAME.sub("_", file_name.rsplit("/", 1)[-1]).lstrip(".-") or "voice"
        with tempfile.TemporaryDirectory(prefix="voxclone-upload-") as scratch:
            folder = Path(scratch)
            path = folder / safe
            try:
                path.write_bytes(data)
            except OSError as e:
                raise BadInput(f"could not store {safe}: {e.strerror}") from e
            engine, params = self.engines.voice_from_file(path)
            params = {k: path.name if v == str(path.resolve()) else v for k, v in params.items()}  # kept with the voice
            self.engines[engine].check_voice(params, folder)
        voice = self.library.create(
            name=name, engine=engine, params=params, category="file", description=description or f"from {safe}"
        )
        try:
            self.library.blobs.put(voice.id, {safe: data})
        except BaseException:
            self.library.delete(voice.id)
            raise
        # A new version: machines that looked at the voice before its file was stored look again.
        return self.library.update(voice.id, bump_version=True)
