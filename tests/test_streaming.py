"""Streaming over HTTP: the same audio as the whole file, first audio before the end, shared and cancellable."""

from __future__ import annotations

import base64
import json
import struct
import threading
import time

import httpx
import numpy as np
import pytest
from conftest import TONE, decode_audio, metric, wer

from voxclone.speech import SpeechRequest

PARAGRAPH = (
    "The old lighthouse keeper climbed the stairs every evening. He lit the great lamp, wiped the salt "
    "from the windows, and watched the ships pass safely through the narrow channel below."
)


def _pcm_seconds(body: bytes, rate: int = 24_000) -> float:
    return len(body) / 2 / rate


@pytest.fixture
def uncached(settings, make_client):
    """A client whose server caches nothing, so streamed and whole requests are both synthesised."""
    return make_client(settings.model_copy(update={"cache_size_bytes": 0}))


def test_streamed_pcm_says_everything_the_whole_file_says(uncached):
    # A stream starts with short pieces for fast first audio; a whole file speaks each sentence in one
    # piece. So the two differ in their pauses, not in what they say.
    whole = uncached.post(f"/v1/text-to-speech/{TONE}?output_format=pcm_16000", json={"text": PARAGRAPH})
    with uncached.stream(
        "POST", f"/v1/text-to-speech/{TONE}/stream?output_format=pcm_16000", json={"text": PARAGRAPH}
    ) as response:
        assert response.status_code == 200
        chunks = [c for c in response.iter_bytes() if c]
    assert len(chunks) > 1
    streamed = b"".join(chunks)
    sounding = [np.count_nonzero(np.abs(np.frombuffer(b, "<i2")) > 100) for b in (streamed, whole.content)]
    assert sounding[0] == pytest.approx(sounding[1], rel=0.01)  # the same tones, however cut


async def test_a_whole_file_never_cuts_a_sentence_where_a_stream_does(runtime):
    # The stream's first piece ends mid-phrase ("The old lighthouse" | "keeper climbed..."); the whole
    # file speaks that sentence in one go. Both are then cached under their own keys.
    request = SpeechRequest(text=PARAGRAPH, voice=TONE)
    streamed, whole = await runtime.speech.plan(request, streamed=True), await runtime.speech.plan(request)
    assert streamed.pieces[0] == "The old lighthouse"
    assert whole.pieces[0] == "The old lighthouse keeper climbed the stairs every evening."
    assert streamed.key != whole.key


@pytest.mark.parametrize(("fmt", "rate"), [("mp3", 16_000), ("opus", 48_000), ("wav", 16_000), ("pcm", 24_000)])
def test_openai_stream_true_decodes_to_about_the_same_length(uncached, fmt, rate):
    body = {"input": PARAGRAPH, "voice": TONE, "response_format": fmt}
    whole = uncached.post("/v1/audio/speech", json=body)
    streamed = uncached.post("/v1/audio/speech", json={**body, "stream": True})
    assert streamed.status_code == 200
    a, _ = decode_audio(whole.content, fmt, rate)
    b, _ = decode_audio(streamed.content, fmt, rate)
    assert b.size == pytest.approx(a.size, rel=0.04)  # pauses differ (see above), not words


def test_streamed_wav_has_an_open_ended_header(client):
    response = client.post(
        "/v1/audio/speech", json={"input": "Short and sweet.", "voice": TONE, "response_format": "wav", "stream": True}
    )
    riff_size, data_size = (
        struct.unpack("<I", response.content[4:8])[0],
        struct.unpack("<I", response.content[40:44])[0],
    )
    assert response.content[:4] == b"RIFF" and riff_size == data_size == 0xFFFFFFFF
    audio, rate = decode_audio(response.content)
    assert audio.size / rate > 0.5


def test_openai_sse_sends_base64_deltas_then_done(client):
    response = client.post(
        "/v1/audio/speech", json={"input": PARAGRAPH, "voice": TONE, "response_format": "pcm", "stream_format": "sse"}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) > 1
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert _pcm_seconds(audio) > 5


def test_a_repeated_stream_comes_from_the_cache(client):
    url = f"/v1/text-to-speech/{TONE}/stream?output_format=mp3_44100_128"
    first = client.post(url, json={"text": PARAGRAPH}).content
    synthesised = metric(client, "voxclone_audio_seconds")
    second = client.post(url, json={"text": PARAGRAPH}).content
    assert first == second
    assert metric(client, "voxclone_cache_hits") == 1
    assert metric(client, "voxclone_audio_seconds") == synthesised  # nothing synthesised again


def test_too_many_streams_get_503_with_retry_after(settings, make_live_server):
    server = make_live_server(
        settings.model_copy(update={"synthesis_workers": 1, "queue_size": 1, "cache_size_bytes": 0})
    )
    long_text = " ".join([PARAGRAPH] * 4)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        holders = [
            client.stream(
                "POST", f"/v1/text-to-speech/{TONE}/stream?output_format=pcm_24000", json={"text": f"{i} {long_text}"}
            )
            for i in range(2)
        ]
        opened = [h.__enter__() for h in holders]
        try:
            refused = client.post(
                f"/v1/text-to-speech/{TONE}/stream?output_format=pcm_24000", json={"text": "One more, please."}
            )
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert "busy" in refused.json()["detail"]["message"]
        finally:
            for h, _ in zip(holders, opened, strict=True):
                h.__exit__(None, None, None)


@pytest.mark.slow
def test_kokoro_streamed_and_whole_speech_say_the_same_words(uncached, transcribe):
    whole = uncached.post("/v1/text-to-speech/jm_kumo?output_format=pcm_24000", json={"text": PARAGRAPH})
    streamed = uncached.post("/v1/text-to-speech/jm_kumo/stream?output_format=pcm_24000", json={"text": PARAGRAPH})
    assert _pcm_seconds(streamed.content) == pytest.approx(
        _pcm_seconds(whole.content), rel=0.04
    )  # no piece lost (the first is 7 %)
    for body in (streamed.content, whole.content):
        audio = np.frombuffer(body, "<i2").astype(np.float32) / 32768
        assert wer(PARAGRAPH, transcribe(audio, 24_000)) <= 0.2  # tiny.en hears "climb" for "climbed"


@pytest.mark.slow
def test_first_chunk_arrives_before_the_whole_text_is_synthesised(live_server):
    url = "/v1/text-to-speech/jm_kumo/stream?output_format=pcm_24000"
    with (
        httpx.Client(base_url=live_server.url, timeout=120) as client,
        client.stream("POST", url, json={"text": PARAGRAPH}) as r,
    ):
        chunks = r.iter_bytes()
        first = next(c for c in chunks if c)
        synthesised_at_first_chunk = live_server.metric("voxclone_audio_seconds")
        rest = b"".join(chunks)
    total = _pcm_seconds(first + rest)
    assert synthesised_at_first_chunk < 0.5 * total


@pytest.mark.slow
def test_a_client_that_disconnects_cancels_the_rest_of_its_synthesis(live_server):
    long_text = " ".join([PARAGRAPH] * 6)
    url = "/v1/text-to-speech/jm_kumo/stream?output_format=pcm_24000"
    with (
        httpx.Client(base_url=live_server.url, timeout=120) as client,
        client.stream("POST", url, json={"text": long_text}) as r,
    ):
        next(c for c in r.iter_bytes() if c)
    time.sleep(4)
    produced = live_server.metric("voxclone_audio_seconds")
    time.sleep(3)
    assert live_server.metric("voxclone_audio_seconds") == produced  # nothing more is being synthesised
    assert produced < 30  # the whole text is ~70 s of speech


@pytest.mark.slow
def test_identical_concurrent_streams_are_synthesised_once(live_server):
    bodies: list[bytes] = []

    def fetch() -> None:
        with httpx.Client(base_url=live_server.url, timeout=120) as client:
            response = client.post(
                "/v1/text-to-speech/jm_kumo/stream?output_format=pcm_24000", json={"text": PARAGRAPH}
            )
            bodies.append(response.content)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bodies) == 4 and len(set(bodies)) == 1
    assert live_server.metric("voxclone_audio_seconds") == pytest.approx(_pcm_seconds(bodies[0]), rel=0.1)
