"""ElevenLabs as a remote engine: an account's voices, spoken through ElevenLabs' streaming API.

With `VOXCLONE_ELEVENLABS_API_KEY` set, the account's voices join the library (category `remote`,
refreshed in the background by voxclone.remote_voices) and speak through every voxclone API: each
piece streams from `/v1/text-to-speech/{id}/stream` as 24 kHz PCM, so voxclone's own filters, cache
and encoders apply as for any engine. `ElevenLabsCloner` makes an instant clone through ElevenLabs'
own `/v1/voices/add`. Any server that speaks ElevenLabs' API works (`VOXCLONE_ELEVENLABS_URL`),
another voxclone included.

Calls run on the event loop (httpx.AsyncClient), never on a synthesis thread. Upstream failures
become voxclone errors: a refused key 502 (with the upstream's words), quota or rate 429 with
Retry-After, no answer in time 504, unreachable 502. The key is sent only in the `xi-api-key` header
and is never logged, returned or put in a message.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
from pydantic import SecretStr

from ..audio import OutputFormat, encode
from ..cloning import ClonedVoice, CloneJob, Cloner
from ..errors import BadInput, UpstreamError, UpstreamRateLimited, UpstreamTimeout
from ..settings import Settings
from .base import READY, AudioChunk, Availability, Capabilities, RemoteEngine, SpeakOptions, StockVoice, VoiceSpec

SAMPLE_RATE = 24_000
_OUTPUT_FORMAT = f"pcm_{SAMPLE_RATE}"
_SPEED_RANGE = (0.7, 1.2)  # what ElevenLabs' voice_settings.speed accepts
# ElevenLabs answers 401 for a spent quota and 429 for too many requests; both are "retry later".
_RETRY_LATER = {"quota_exceeded", "too_many_concurrent_requests", "system_busy", "rate_limit_exceeded"}
_FIX = "set VOXCLONE_ELEVENLABS_API_KEY to a key from your ElevenLabs account"


class ElevenLabsEngine(RemoteEngine):
    """The voices of one ElevenLabs account (or of a server speaking its API)."""

    name = "elevenlabs"
    title = "ElevenLabs"
    capabilities = Capabilities(
        languages=("en", "de", "es", "fr", "it", "ja", "pt", "zh"),
        max_piece_chars=600,
        streaming=True,
        cloning_tiers=("instant",),
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ElevenLabsEngine:
        return cls(
            settings.elevenlabs_api_key,
            settings.elevenlabs_url,
            model_id=settings.elevenlabs_model_id,
            timeout_s=settings.elevenlabs_timeout_s,
            refresh_s=settings.elevenlabs_refresh_s,
        )

    def __init__(
        self,
        api_key: SecretStr | None,
        url: str,
        *,
        model_id: str = "eleven_multilingual_v2",
        timeout_s: float = 30.0,
        refresh_s: float = 300.0,
    ) -> None:
        super().__init__()
        self._key = api_key
        self.url = url.rstrip("/")
        self._model_id = model_id
        self._timeout_s = timeout_s
        self.voices_refresh_s = refresh_s if api_key is not None else None
        # One connection pool per event loop: a client cannot be shared between loops.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def availability(self) -> Availability:
        if self._key is None:
            return Availability("disabled", "no ElevenLabs API key is set", _FIX)
        return READY

    # Connections -------------------------------------------------------------------------------

    def _new_client(self) -> httpx.AsyncClient:
        key = self._key.get_secret_value() if self._key is not None else ""
        timeout = httpx.Timeout(self._timeout_s, connect=min(self._timeout_s, 10.0))
        return httpx.AsyncClient(base_url=self.url, headers={"xi-api-key": key}, timeout=timeout)

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = self._clients[loop] = self._new_client()
        return client

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    @asynccontextmanager
    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> AsyncIterator[httpx.Response]:
        """One upstream request, its failures turned into voxclone errors (also while its body streams)."""
        try:
            async with client.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._refusal(response)
                yield response
        except httpx.TimeoutException as e:
            raise UpstreamTimeout(f"ElevenLabs ({self.url}) did not answer within {self._timeout_s:g} s") from e
        except httpx.TransportError as e:  # refused, reset, unknown host
            raise UpstreamError(
                f"could not reach ElevenLabs at {self.url}: {self._hidden(str(e)) or type(e).__name__}"
            ) from e

    def _hidden(self, text: str) -> str:
        """`text` without the key, should an upstream ever echo it."""
        key = self._key.get_secret_value() if self._key is not None else ""
        return text.replace(key, "***") if key else text

    def _refusal(self, response: httpx.Response) -> UpstreamError:
        status, reason = _reason(response)
        said = self._hidden(f"{response.status_code} {reason}".strip())
        if response.status_code == 429 or status in _RETRY_LATER:
            return UpstreamRateLimited(f"ElevenLabs asks to retry later: {said}", retry_after=_retry_after(response))
        if response.status_code in (401, 403):
            return UpstreamError(f"ElevenLabs refused the API key: {said}")
        return UpstreamError(f"ElevenLabs answered {said}")

    # Voices ------------------------------------------------------------------------------------

    def stock_voices(self) -> list[StockVoice]:
        return []  # the account's voices are listed by remote_voices, in the background

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        if not isinstance(params.get("voice_id"), str) or not params["voice_id"]:
            raise BadInput("an ElevenLabs voice needs 'voice_id' (a voice id of the ElevenLabs account)")

    async def remote_voices(self) -> list[StockVoice]:
        async with self._call(self._client(), "GET", "/v1/voices") as response:
            await response.aread()
        try:
            listed = response.json()["voices"]
            return [
                StockVoice(
                    name=str(v["name"]),
                    params={"voice_id": str(v["voice_id"])},
                    labels={str(k): str(x) for k, x in (v.get("labels") or {}).items()},
                    description=str(v.get("description") or ""),
                )
                for v in listed
                if v.get("status", "ready") == "ready"  # voxclone upstreams list voices still enrolling
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise UpstreamError(f"ElevenLabs' voice list is not what its API returns: {type(e).__name__}") from e

    async def add_voice(
        self, name: str, files: list[tuple[str, bytes]], description: str = "", *, wait_s: float = 600.0
    ) -> str:
        """An instant clone made by the upstream from WAV recordings; returns its voice id once it can speak.

        ElevenLabs' instant clones are ready at once; a voxclone upstream enrols in the background and
        says so in the voice's `status`, which is then followed for up to `wait_s`.
        """
        form = {"name": name, "description": description}
        async with self._new_client() as client:
            upload = [("files", (n, data, "audio/wav")) for n, data in files]
            async with self._call(client, "POST", "/v1/voices/add", data=form, files=upload) as response:
                await response.aread()
            try:
                voice_id = str(response.json()["voice_id"])
            except (ValueError, KeyError, TypeError) as e:
                raise UpstreamError("ElevenLabs accepted the clone but returned no voice id") from e
            deadline = asyncio.get_running_loop().time() + wait_s
            while True:
                async with self._call(client, "GET", f"/v1/voices/{quote(voice_id, safe='')}") as response:
                    await response.aread()
                status = response.json().get("status", "ready")
                if status == "failed":
                    raise UpstreamError(f"the upstream could not clone the voice: {response.json().get('error')}")
                if status != "enrolling" or asyncio.get_running_loop().time() > deadline:
                    return voice_id
                await asyncio.sleep(0.5)

    # Speaking ----------------------------------------------------------------------------------

    async def astream(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> AsyncIterator[AudioChunk]:
        body: dict[str, Any] = {"text": text, "model_id": self._model_id, "seed": options.seed}
        if options.speed != 1.0:  # ElevenLabs takes 0.7-1.2; beyond that its nearest
            body["voice_settings"] = {"speed": min(max(options.speed, _SPEED_RANGE[0]), _SPEED_RANGE[1])}
        path = f"/v1/text-to-speech/{quote(str(voice.params['voice_id']), safe='')}/stream"
        async with self._call(
            self._client(), "POST", path, params={"output_format": _OUTPUT_FORMAT}, json=body
        ) as response:
            odd = b""  # a network read may end between the two bytes of a sample
            async for data in response.aiter_bytes():
                data = odd + data
                whole = len(data) - len(data) % 2
                odd = data[whole:]
                if whole:
                    yield AudioChunk(np.frombuffer(data[:whole], "<i2").astype(np.float32) / 32768.0, SAMPLE_RATE, text)


def _reason(response: httpx.Response) -> tuple[str, str]:
    """(status word, message) from an error body: ElevenLabs' `{"detail": {"status", "message"}}`, else text."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return "", response.text[:200]
    if isinstance(detail, dict):
        return str(detail.get("status") or ""), str(detail.get("message") or detail.get("status") or "")[:300]
    return "", str(detail or "")[:300]


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


class ElevenLabsCloner(Cloner):
    """An instant clone made by ElevenLabs itself from the voice's stored recordings."""

    engine = "elevenlabs"
    tier = "instant"

    def clone(self, job: CloneJob) -> ClonedVoice:
        if not isinstance(job.engine, ElevenLabsEngine):
            raise BadInput("the elevenlabs cloner needs the elevenlabs engine")
        wav = OutputFormat("wav")
        files = [(f"sample-{i + 1}.wav", encode(r.audio, r.sample_rate, wav)) for i, r in enumerate(job.references)]
        seconds = sum(r.audio.size / r.sample_rate for r in job.references)
        job.progress(0.1, f"uploading {math.ceil(seconds)} s of speech to ElevenLabs")
        # An enrolment thread, not a synthesis one: it may wait for the upload on a loop of its own.
        voice_id = asyncio.run(job.engine.add_voice(job.voice_name or "voxclone voice", files, "cloned by voxclone"))
        return ClonedVoice(params={"voice_id": voice_id}, scores={"reference_seconds": round(seconds, 1)})
