"""The engine contract: engines found by entry point, unavailable ones explained, remote ones async."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from conftest import TONE, decode_audio

from voxclone.engines import (
    AudioChunk,
    Availability,
    Engine,
    Engines,
    RemoteEngine,
    SpeakOptions,
    StockVoice,
    VoiceSpec,
    build_engines,
)
from voxclone.runtime import Parts
from voxclone.settings import Settings


class SlowRemote(RemoteEngine):
    """A network engine: its audio arrives when the test lets it, and it waits on the event loop."""

    name = "remote"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.waiting = threading.Event()

    @classmethod
    def from_settings(cls, settings: Settings) -> SlowRemote:
        return cls()

    def stock_voices(self) -> list[StockVoice]:
        return [StockVoice("far_away", {})]

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        pass

    async def astream(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> AsyncIterator[AudioChunk]:
        self.waiting.set()
        while not self.release.is_set():  # as a network read would: awaiting, not blocking
            await asyncio.sleep(0.01)
        yield AudioChunk(np.full(8000, 0.1, np.float32), 8000, text)


class NeedsWeights(Engine):
    name = "heavy"

    @classmethod
    def from_settings(cls, settings: Settings) -> NeedsWeights:
        return cls()

    def availability(self) -> Availability:
        return Availability("missing_weights", "no weights in the model folder", "voxclone models pull heavy")

    def stock_voices(self) -> list[StockVoice]:
        return [StockVoice("heavy_voice", {})]

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        pass

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        raise AssertionError("an unavailable engine is never asked to speak")


def test_engines_come_from_entry_points_and_say_what_they_can_do(settings):
    engines = build_engines(settings)
    assert {"kokoro", "piper", "tone"} <= set(engines.all_names())
    assert engines["tone"].capabilities.word_timings and engines["tone"].capabilities.voice_files == (".tone.npz",)
    assert engines["kokoro"].capabilities.cloning_tiers == ("instant", "deep")


def test_a_disabled_engine_is_listed_with_the_reason(settings):
    engines = build_engines(settings.model_copy(update={"disabled_engines": ["piper"]}))
    assert "piper" not in engines and engines.availability("piper").state == "disabled"


def test_an_engine_without_its_weights_answers_503_with_the_command_that_fixes_it(settings, make_client, engines):
    client = make_client(settings, Parts(engines=Engines({**engines, "heavy": NeedsWeights()})))
    response = client.get("/speak_as/heavy_voice", params={"prompt": "Hello."})
    assert response.status_code == 503
    assert "voxclone models pull heavy" in response.json()["detail"]["message"]
    health = client.get("/health").json()["engines"]["heavy"]
    assert health == {
        "title": "heavy",  # an engine that gives no title is shown by its name
        "state": "missing_weights",
        "detail": "no weights in the model folder",
        "fix": "voxclone models pull heavy",
    }


def test_a_remote_engine_never_holds_a_worker_thread(settings, make_live_server, engines):
    remote = SlowRemote()
    server = make_live_server(
        settings.model_copy(update={"synthesis_workers": 1}), Parts(engines=Engines({**engines, "remote": remote}))
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        result: dict[str, httpx.Response] = {}
        far = threading.Thread(
            target=lambda: result.setdefault("far", client.get("/speak_as/far_away", params={"prompt": "Hi."}))
        )
        far.start()
        assert remote.waiting.wait(10)
        # the remote call is waiting on the network; the only worker is free for local speech
        near = client.get(f"/speak_as/{TONE}", params={"prompt": "Hello."})
        assert near.status_code == 200
        remote.release.set()
        far.join(10)
    audio, rate = decode_audio(result["far"].content)
    assert rate == 8000 and audio.size == 8000
