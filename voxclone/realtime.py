"""A realtime voice conversation, speaking the OpenAI Realtime API's events (the subset a voice agent needs).

Audio comes in as pcm16 24 kHz mono (`input_audio_buffer.append`). With server VAD (the default) each
20 ms frame is judged as it arrives (vad.VoiceActivity): at the end of the user's speech the turn is
committed, Whisper hears it (conversation.item.input_audio_transcription.completed), and a reply is
spoken in the session's voice, streamed as `response.audio.delta` events with its transcript.

- The reply's words come from an OpenAI-compatible chat endpoint (settings.llm_url), streamed and
  spoken clause by clause as they arrive; with none configured the session says back what it heard,
  in its voice (a voice changer), and says so in `session.created`.
- Whisper starts at the first quiet moment after speech, before the silence duration has passed, and
  its result is used only if the user does not go on speaking: the silence wait hides its time.
- Barge-in: speech while a reply is playing cancels the reply at once (no audio of it is sent after
  `input_audio_buffer.speech_started`), and the reply is cut in the history at what was heard:
  the words whose audio ended before the reply was interrupted, assuming the client played the audio
  from its first byte in real time (or at `audio_end_ms`, when the client says so with
  `conversation.item.truncate`).

A session is one object per connection, independent of the transport: `handle(event)` takes each
client event, and `send` (given) receives each server event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .asr import TranscribeOptions
from .audio import OutputFormat
from .engines import WordTiming
from .errors import LimitExceeded, VoxcloneError
from .llm import ChatClient
from .settings import Settings
from .speech import SpeechService
from .text import take_speakable
from .transcription import TranscriptionService
from .vad import VoiceActivity

RATE = 24_000  # pcm16 in and out, as OpenAI's Realtime API sends and expects
_MAX_TURN_S = 60.0  # a turn longer than this is committed as it is
_MAX_MANUAL_BUFFER_S = 120.0  # without server VAD, the most audio held before a commit
_HISTORY_ITEMS = 40  # conversation items kept for the chat endpoint's context
_MIN_COMMIT_S = 0.1
Send = Callable[[dict[str, Any]], Awaitable[None]]
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):08d}{int(time.time() * 1000) % 100000:05d}"


@dataclass
class TurnDetection:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"type": "server_vad", **self.__dict__}


@dataclass
class Item:
    """A message in the conversation: what the user said, or what the assistant said (or began to)."""

    id: str
    role: str
    text: str = ""
    words: list[WordTiming] = field(default_factory=list)  # an assistant reply's, on its audio's clock

    def as_json(self, status: str = "completed") -> dict[str, Any]:
        kind = "input_audio" if self.role == "user" else "audio"
        return {
            "id": self.id,
            "object": "realtime.item",
            "type": "message",
            "role": self.role,
            "status": status,
            "content": [{"type": kind, "transcript": self.text}],
        }

    def truncate(self, seconds: float) -> None:
        """Keep the words heard in the first `seconds` of the item's audio."""
        self.text = " ".join(w.word for w in self.words if w.end <= seconds + 0.05)
        self.words = [w for w in self.words if w.end <= seconds + 0.05]


class RealtimeError(VoxcloneError):
    code = "invalid_request_error"


class Sessions:
    """Open conversations, at most settings.realtime_sessions_per_key per key (or per IP without keys)."""

    def __init__(self, settings: Settings, speech: SpeechService, transcription: TranscriptionService) -> None:
        self.settings = settings
        self.speech = speech
        self.transcription = transcription
        self._open: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def conversation(self, client: str, send: Send, voice: str | None = None) -> AsyncIterator[RealtimeSession]:
        """A started session for `client` (LimitExceeded beyond its allowance); closed on leaving."""
        if self._open.get(client, 0) >= self.settings.realtime_sessions_per_key:
            raise LimitExceeded(
                f"at most {self.settings.realtime_sessions_per_key} realtime sessions per key; close one first",
                limit="realtime_sessions_per_key",
            )
        if voice is not None:
            voice = (await self.speech.find(voice)).id
        self._open[client] = self._open.get(client, 0) + 1
        settings = self.settings
        chat = (
            ChatClient(settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_s)
            if settings.llm_url
            else None
        )
        session = RealtimeSession(settings, self.speech, self.transcription, send, chat, voice)
        try:
            await session.start()
            yield session
        finally:
            self._open[client] -= 1
            await session.close()
            if chat is not None:
                await chat.aclose()


class Response:
    """One reply being spoken; `task` runs it."""

    def __init__(self, item: Item) -> None:
        self.id = _id("resp")
        self.item = item
        self.task: asyncio.Task[None] | None = None
        self.audio_s = 0.0  # audio sent so far
        self.first_audio: float | None = None  # monotonic time of the first audio byte sent
        self.cancelled = False

    def heard_s(self) -> float:
        """How much of the reply the client has played, if it plays from the first byte in real time."""
        if self.first_audio is None:
            return 0.0
        return min(self.audio_s, time.monotonic() - self.first_audio)


class RealtimeSession:
    """One conversation. Feed it client events with `handle`; it sends server events with `send`."""

    def __init__(
        self,
        settings: Settings,
        speech: SpeechService,
        transcription: TranscriptionService,
        send: Send,
        chat: ChatClient | None = None,
        voice: str | None = None,
    ) -> None:
        self.settings = settings
        self.speech = speech
        self.transcription = transcription
        self.chat = chat
        self._send = send
        self.id = _id("sess")
        self.voice = voice or settings.default_voice
        self.instructions = "You are a helpful, concise voice assistant. Answer in one or two short sentences."
        self.turn_detection: TurnDetection | None = TurnDetection()
        self.temperature: float | None = None
        self.history: list[Item] = []
        self.response: Response | None = None
        self._vad = VoiceActivity(RATE, silence_s=self.turn_detection.silence_duration_ms / 1000)
        self._buffer: list[np.ndarray] = []  # input audio since the last commit (24 kHz float)
        self._buffer_start = 0.0  # stream seconds where the buffer begins
        self._received = 0.0  # stream seconds received
        self._speech_start: float | None = None
        self._item_id: str | None = None  # the user item the current speech will become
        self._early: tuple[float, asyncio.Task[str]] | None = None  # Whisper started at a pause
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hearing: set[asyncio.Task[Any]] = set()  # committed turns still being transcribed

    # Sending ------------------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        await self._send({"event_id": _id("event"), **event})

    async def error(self, message: str, code: str = "invalid_request", *, event_id: str | None = None) -> None:
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": event_id,
                },
            }
        )

    def info(self) -> dict[str, Any]:
        """The session as `session.created`/`session.updated` describe it."""
        replies = "chat" if self.chat is not None else "echo"
        note = (
            f"replies are written by {self.chat.model}"
            if self.chat is not None
            else "no chat endpoint is configured (VOXCLONE_LLM_URL): the session says back what it hears, in its voice (a voice changer)"
        )
        return {
            "id": self.id,
            "object": "realtime.session",
            "model": "voxclone-realtime",
            "modalities": ["audio", "text"],
            "voice": self.voice,
            "instructions": self.instructions,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": {"model": self.settings.realtime_transcription_model},
            "turn_detection": self.turn_detection.as_json() if self.turn_detection else None,
            "temperature": self.temperature,
            "replies": replies,
            "note": note,
        }

    async def start(self) -> None:
        await self.send({"type": "session.created", "session": self.info()})

    # Client events ------------------------------------------------------------------------------

    async def handle(self, event: dict[str, Any]) -> None:
        """One client event; a bad one gets an `error` event, never an exception."""
        kind = event.get("type")
        handler = self._HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self.error(
                f"unknown event type {kind!r}; voxclone handles {', '.join(sorted(self._HANDLERS))}",
                "invalid_event",
                event_id=event.get("event_id"),
            )
            return
        try:
            await handler(self, event)
        except VoxcloneError as e:
            await self.error(str(e), e.code, event_id=event.get("event_id"))

    async def _session_update(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            raise RealtimeError("session.update needs a `session` object")
        if "voice" in session:
            self.voice = (
                await self.speech.find(str(session["voice"]))
            ).id  # unknown or unready: an error, nothing changes
        if isinstance(session.get("instructions"), str):
            self.instructions = session["instructions"][:20_000]
        if "temperature" in session:
            self.temperature = float(session["temperature"]) if session["temperature"] is not None else None
        if "turn_detection" in session:
            self._set_turn_detection(session["turn_detection"])
        for name in ("input_audio_format", "output_audio_format"):
            if session.get(name, "pcm16") != "pcm16":
                raise RealtimeError(f"{name} must be pcm16 (24 kHz mono); got {session[name]!r}")
        await self.send({"type": "session.updated", "session": self.info()})

    def _set_turn_detection(self, value: Any) -> None:
        if value is None:
            self.turn_detection = None
            return
        if not isinstance(value, dict) or value.get("type", "server_vad") != "server_vad":
            raise RealtimeError('turn_detection must be null or {"type": "server_vad", ...}')
        current = self.turn_detection or TurnDetection()
        try:
            detection = TurnDetection(
                threshold=float(value.get("threshold", current.threshold)),
                prefix_padding_ms=int(value.get("prefix_padding_ms", current.prefix_padding_ms)),
                silence_duration_ms=int(value.get("silence_duration_ms", current.silence_duration_ms)),
                create_response=bool(value.get("create_response", current.create_response)),
                interrupt_response=bool(value.get("interrupt_response", current.interrupt_response)),
            )
        except (TypeError, ValueError) as e:
            raise RealtimeError(f"bad turn_detection: {e}") from e
        if (
            not 0 < detection.threshold < 1
            or not 0 <= detection.prefix_padding_ms <= 2000
            or not 100 <= detection.silence_duration_ms <= 5000
        ):
            raise RealtimeError(
                "turn_detection: threshold in (0, 1), prefix_padding_ms 0-2000, silence_duration_ms 100-5000"
            )
        self.turn_detection = detection
        self._vad.threshold = detection.threshold
        self._vad.silence_s = detection.silence_duration_ms / 1000

    async def _append(self, event: dict[str, Any]) -> None:
        try:
            raw = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, TypeError) as e:
            raise RealtimeError("input_audio_buffer.append needs base64 pcm16 `audio`") from e
        samples = np.frombuffer(raw[: len(raw) // 2 * 2], "<i2").astype(np.float32) / 32768.0
        self._buffer.append(samples)
        self._received += samples.size / RATE
        if self.turn_detection is None:
            if self._received - self._buffer_start > _MAX_MANUAL_BUFFER_S:
                self._clear_buffer()
                raise LimitExceeded(
                    f"over {_MAX_MANUAL_BUFFER_S:.0f} s of audio without a commit; the buffer was cleared",
                    limit="input_audio_buffer",
                )
            return
        # Silero judges a 32 ms window in about 0.1 ms: cheap enough to run here, as each frame arrives.
        for vad in self._vad.feed(samples):
            await self._on_vad(vad.kind, vad.at)
        if self._speech_start is None:
            self._keep_only(self._received - self.turn_detection.prefix_padding_ms / 1000)
        elif self._received - self._speech_start > _MAX_TURN_S:
            await self._end_of_speech(self._received)

    async def _on_vad(self, kind: str, at: float) -> None:
        detection = self.turn_detection
        assert detection is not None
        if kind == "start":
            self._speech_start, self._item_id = at, _id("item")
            if self.response is not None and detection.interrupt_response:
                await self._cancel(self.response, barge_in=True)  # first: no more of its audio goes out
            await self.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": round(at * 1000),
                    "item_id": self._item_id,
                }
            )
        elif kind == "pause" and self._speech_start is not None:
            audio = self._audio(self._speech_start - detection.prefix_padding_ms / 1000, at + 0.2)
            self._early = (at, self._spawn(self._transcribe(audio)))
        elif kind == "resume":
            self._early = None
        elif kind == "stop" and self._speech_start is not None:
            await self._end_of_speech(at)

    async def _end_of_speech(self, at: float) -> None:
        assert self.turn_detection is not None and self._item_id is not None and self._speech_start is not None
        item_id, start = self._item_id, self._speech_start - self.turn_detection.prefix_padding_ms / 1000
        await self.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": round(at * 1000), "item_id": item_id}
        )
        early, self._early = self._early, None
        transcript = early[1] if early is not None and abs(early[0] - at) < 1e-6 else None
        audio = self._audio(start, at + 0.2) if transcript is None else None
        self._speech_start = None
        self._keep_only(at)
        await self._commit_item(item_id, audio, transcript, respond=self.turn_detection.create_response)

    async def _commit(self, event: dict[str, Any]) -> None:
        if self._received - self._buffer_start < _MIN_COMMIT_S:
            raise RealtimeError(f"the input audio buffer holds under {_MIN_COMMIT_S * 1000:.0f} ms; nothing to commit")
        audio = self._audio(self._buffer_start, self._received)
        self._clear_buffer()
        await self._commit_item(_id("item"), audio, None, respond=False)

    async def _commit_item(
        self, item_id: str, audio: np.ndarray | None, transcript: asyncio.Task[str] | None, *, respond: bool
    ) -> None:
        """Announce the user's item now; hear it (and reply) in the background, so audio that arrives
        meanwhile is still judged frame by frame (a barge-in is not delayed by Whisper)."""
        previous = self.history[-1].id if self.history else None
        item = Item(item_id, "user")
        await self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item_id})
        await self.send(
            {"type": "conversation.item.created", "previous_item_id": previous, "item": item.as_json("completed")}
        )
        self._remember(item)
        if transcript is None:
            assert audio is not None
            transcript = self._spawn(self._transcribe(audio))
        hearing = self._spawn(self._heard(item, transcript, respond=respond))
        self._hearing.add(hearing)
        hearing.add_done_callback(self._hearing.discard)

    async def _heard(self, item: Item, transcript: asyncio.Task[str], *, respond: bool) -> None:
        item_id = item.id
        try:
            item.text = await transcript
        except VoxcloneError as e:
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item_id,
                    "content_index": 0,
                    "error": {"type": "transcription_error", "code": e.code, "message": str(e)},
                }
            )
            return
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": item.text,
            }
        )
        if respond and item.text.strip():
            await self._start_response()

    async def _clear(self, event: dict[str, Any]) -> None:
        self._clear_buffer()
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, list) or item.get("role") not in ("user", "assistant", "system"):  # type: ignore[union-attr]
            raise RealtimeError("conversation.item.create needs an `item` with a role and a `content` list")
        text = " ".join(
            str(part.get("text") or part.get("transcript") or "") for part in content if isinstance(part, dict)
        ).strip()
        created = Item(str(item.get("id") or _id("item")), str(item["role"]), text[:20_000])  # type: ignore[index,union-attr]
        previous = self.history[-1].id if self.history else None
        self._remember(created)
        await self.send({"type": "conversation.item.created", "previous_item_id": previous, "item": created.as_json()})

    async def _truncate(self, event: dict[str, Any]) -> None:
        item = next((i for i in self.history if i.id == event.get("item_id") and i.role == "assistant"), None)
        if item is None:
            raise RealtimeError(f"no assistant item {event.get('item_id')!r} to truncate")
        audio_end_ms = event.get("audio_end_ms")
        if not isinstance(audio_end_ms, int) or audio_end_ms < 0:
            raise RealtimeError("conversation.item.truncate needs a whole, non-negative `audio_end_ms`")
        if self.response is not None and self.response.item is item:
            await self._cancel(self.response, barge_in=False)
        item.truncate(audio_end_ms / 1000)
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            }
        )

    async def _response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None:
            raise RealtimeError("a response is already in progress; cancel it first (response.cancel)")
        await self._start_response()

    async def _response_cancel(self, event: dict[str, Any]) -> None:
        if self.response is None:
            raise RealtimeError("no response is in progress")
        await self._cancel(self.response, barge_in=False)

    _HANDLERS: ClassVar[dict[str, Callable[[RealtimeSession, dict[str, Any]], Awaitable[None]]]] = {
        "session.update": _session_update,
        "input_audio_buffer.append": _append,
        "input_audio_buffer.commit": _commit,
        "input_audio_buffer.clear": _clear,
        "conversation.item.create": _item_create,
        "conversation.item.truncate": _truncate,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
    }

    # Input audio --------------------------------------------------------------------------------

    def _audio(self, start: float, end: float) -> np.ndarray:
        whole = np.concatenate(self._buffer) if self._buffer else np.zeros(0, np.float32)
        first = max(0, int((start - self._buffer_start) * RATE))
        return whole[first : max(first, int((end - self._buffer_start) * RATE))]

    def _keep_only(self, since: float) -> None:
        """Drop buffered audio before `since` (stream seconds)."""
        if since <= self._buffer_start or not self._buffer:
            return
        kept = self._audio(since, self._received)
        self._buffer, self._buffer_start = [kept], self._received - kept.size / RATE

    def _clear_buffer(self) -> None:
        self._buffer, self._buffer_start = [], self._received

    async def _transcribe(self, audio: np.ndarray) -> str:
        options = TranscribeOptions(
            language="en" if self.settings.realtime_transcription_model.endswith(".en") else None
        )
        return await self.transcription.quick(audio, RATE, self.settings.realtime_transcription_model, options)

    def _remember(self, item: Item) -> None:
        self.history.append(item)
        del self.history[:-_HISTORY_ITEMS]

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Replies ------------------------------------------------------------------------------------

    async def _start_response(self) -> None:
        item = Item(_id("item"), "assistant")
        response = self.response = Response(item)
        previous = self.history[-1].id if self.history else None
        await self.send(
            {
                "type": "response.created",
                "response": {"id": response.id, "object": "realtime.response", "status": "in_progress", "output": []},
            }
        )
        self._remember(item)
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response.id,
                "output_index": 0,
                "item": item.as_json("in_progress"),
            }
        )
        await self.send(
            {"type": "conversation.item.created", "previous_item_id": previous, "item": item.as_json("in_progress")}
        )
        await self.send(
            {
                "type": "response.content_part.added",
                "response_id": response.id,
                "item_id": item.id,
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "audio", "transcript": ""},
            }
        )
        response.task = self._spawn(self._run_response(response))

    async def _reply_text(self) -> AsyncIterator[str]:
        """The reply's words: the chat endpoint's, or what the user said last (voice changer)."""
        if self._hearing:  # a reply asked for right after a commit answers what was said in it
            await asyncio.wait(list(self._hearing))
        if self.chat is None:
            yield next((i.text for i in reversed(self.history) if i.role == "user" and i.text), "")
            return
        messages = [{"role": "system", "content": self.instructions}]
        messages += [{"role": i.role, "content": i.text} for i in self.history if i.text]
        async for text in self.chat.stream(messages, temperature=self.temperature):
            yield text

    async def _run_response(self, response: Response) -> None:
        clauses: asyncio.Queue[str | None] = asyncio.Queue()
        writer = self._spawn(self._write(clauses))
        try:
            session = await self.speech.session(self.voice, OutputFormat("pcm", RATE))
            try:
                while (clause := await clauses.get()) is not None:
                    await self._speak(response, session, clause)
            finally:
                session.close()
            await writer
        except VoxcloneError as e:
            await self._fail(response, e)
            return
        finally:
            writer.cancel()  # a cancelled reply stops reading the chat endpoint too
        await self._finish(response, "completed")

    async def _write(self, clauses: asyncio.Queue[str | None]) -> None:
        """The reply's text, cut into speakable clauses as it arrives."""
        buffer = ""
        try:
            async for text in self._reply_text():
                buffer += text
                now, buffer = take_speakable(buffer, flush=False)
                if now:
                    clauses.put_nowait(now)
            if buffer.strip():
                clauses.put_nowait(buffer.strip())
        finally:
            clauses.put_nowait(None)

    async def _speak(self, response: Response, session: Any, clause: str) -> None:
        async for data, chunk in session.speak(clause):
            if response.cancelled:
                return
            offset = response.audio_s
            response.item.words += [WordTiming(w.word, w.start + offset, w.end + offset) for w in chunk.words]
            response.item.text = f"{response.item.text} {chunk.text}".strip()
            if response.first_audio is None:
                response.first_audio = time.monotonic()
            response.audio_s += len(data) / 2 / RATE
            ids = {"response_id": response.id, "item_id": response.item.id, "output_index": 0, "content_index": 0}
            await self.send({"type": "response.audio.delta", **ids, "delta": base64.b64encode(data).decode()})
            await self.send({"type": "response.audio_transcript.delta", **ids, "delta": chunk.text + " "})

    async def _cancel(self, response: Response, *, barge_in: bool) -> None:
        """Stop a reply now; in the history it keeps what was heard of it."""
        if response.cancelled:
            return
        response.cancelled = True
        if response.task is not None:
            response.task.cancel()
        if barge_in:
            response.item.truncate(response.heard_s())
        await self._finish(response, "cancelled")

    async def _fail(self, response: Response, error: VoxcloneError) -> None:
        await self.error(f"the reply failed: {error}", error.code)
        await self._finish(response, "failed")

    async def _finish(self, response: Response, status: str) -> None:
        if self.response is not response:
            return
        self.response = None
        ids = {"response_id": response.id, "item_id": response.item.id, "output_index": 0, "content_index": 0}
        if status == "completed":
            await self.send({"type": "response.audio.done", **ids})
            await self.send({"type": "response.audio_transcript.done", **ids, "transcript": response.item.text})
            await self.send(
                {
                    "type": "response.content_part.done",
                    **ids,
                    "part": {"type": "audio", "transcript": response.item.text},
                }
            )
        item_status = "completed" if status == "completed" else "incomplete"
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response.id,
                "output_index": 0,
                "item": response.item.as_json(item_status),
            }
        )
        await self.send(
            {
                "type": "response.done",
                "response": {
                    "id": response.id,
                    "object": "realtime.response",
                    "status": status,
                    "output": [response.item.as_json(item_status)],
                    "usage": None,
                    "audio_seconds": round(response.audio_s, 3),
                    "heard_seconds": round(response.heard_s(), 3),
                },
            }
        )

    async def close(self) -> None:
        """Stop everything the session started (its reply, its transcriptions)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
