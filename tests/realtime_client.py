"""A test client for /v1/realtime that talks like a microphone: pcm16 24 kHz in 20 ms frames, in real time.

Used by tests/test_realtime.py and bench/realtime.py. A sender thread sends a frame every 20 ms (the
queued speech, else silence, as a live microphone would); a receiver thread timestamps every event.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque

import numpy as np
from websockets.sync.client import ClientConnection, connect

from voxclone.audio import ANALYSIS_RATE, decode, resample
from voxclone.vad import speech_mask

RATE = 24_000
FRAME = RATE // 50  # 20 ms


def utterance(path, longest_s: float = 4.0, pause_s: float = 0.35) -> np.ndarray:
    """The first stretch of speech in a recording (24 kHz), from its onset to its first pause."""
    audio = decode(path.read_bytes(), target_rate=ANALYSIS_RATE, max_seconds=60)
    mask = speech_mask(audio, ANALYSIS_RATE, pad_s=0.0)
    start = int(np.flatnonzero(mask)[0])
    end, quiet = start, 0
    for i in range(start, min(mask.size, start + int(longest_s * ANALYSIS_RATE))):
        quiet = 0 if mask[i] else quiet + 1
        if quiet >= pause_s * ANALYSIS_RATE:
            break
        end = i if mask[i] else end
    return resample(audio[start : end + 1], ANALYSIS_RATE, RATE)


class Talker:
    """One realtime conversation, driven like a person at a microphone."""

    def __init__(
        self, url: str, *, subprotocols: list[str] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self._connection = connect(url, subprotocols=subprotocols, additional_headers=headers, max_size=2**24)  # type: ignore[arg-type]
        self.ws: ClientConnection = self._connection.__enter__()
        self.events: list[tuple[float, dict]] = []
        self._changed = threading.Condition()
        self._speech: deque[np.ndarray] = deque()
        self.speech_sent: list[tuple[float, float]] = []  # (time the first frame went, time the last one went)
        self.speech_began: list[float] = []  # time each utterance's first frame went
        self._running = True
        self._lock = threading.Lock()
        threading.Thread(target=self._receive, daemon=True).start()
        threading.Thread(target=self._microphone, daemon=True).start()

    def send(self, event: dict) -> None:
        with self._lock:
            self.ws.send(json.dumps(event))

    def say(self, audio: np.ndarray) -> None:
        """Queue speech; the microphone sends it in real time, then silence again."""
        self._speech.append(audio)

    def ask(self, text: str) -> None:
        """Type a turn instead of saying it, and ask for the reply (as a text box in a voice agent does)."""
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        self.send({"type": "conversation.item.create", "item": item})
        self.send({"type": "response.create"})

    def _microphone(self) -> None:
        silence = np.zeros(FRAME, np.float32)
        queue: list[np.ndarray] = []
        first = None
        next_at = time.perf_counter()
        while self._running:
            if not queue and self._speech:
                speech = self._speech.popleft()
                queue = [speech[i : i + FRAME] for i in range(0, speech.size, FRAME)]
                first = None
            frame = queue.pop(0) if queue else silence
            pcm = (np.clip(frame, -1, 1) * 32767).astype("<i2").tobytes()
            try:
                self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})
            except Exception:  # the socket closed
                return
            now = time.perf_counter()
            if frame is not silence:
                if first is None:
                    first = now
                    self.speech_began.append(now)
                if not queue:
                    self.speech_sent.append((first, now))
            next_at += FRAME / RATE
            time.sleep(max(0.0, next_at - time.perf_counter()))

    def _receive(self) -> None:
        try:
            for message in self.ws:
                event = json.loads(message)
                with self._changed:
                    self.events.append((time.perf_counter(), event))
                    self._changed.notify_all()
        except Exception:
            pass
        finally:
            with self._changed:
                self._running = False
                self._changed.notify_all()

    def wait_for(self, kind: str, *, since: int = 0, timeout: float = 60.0) -> tuple[int, float, dict]:
        """The first event of `kind` at index >= since: (index, time received, event)."""
        deadline = time.perf_counter() + timeout
        with self._changed:
            while True:
                for index in range(since, len(self.events)):
                    if self.events[index][1].get("type") == kind:
                        return index, *self.events[index]
                left = deadline - time.perf_counter()
                if left <= 0 or not self._running:
                    raise TimeoutError(f"no {kind} event; got {[e['type'] for _, e in self.events[since:]][-12:]}")
                self._changed.wait(left)

    def types(self, since: int = 0) -> list[str]:
        return [
            e["type"]
            for _, e in self.events[since:]
            if e["type"] not in ("response.audio.delta", "response.audio_transcript.delta")
        ]

    def audio(self, response_id: str) -> np.ndarray:
        """The reply's audio, as received."""
        pcm = b"".join(
            base64.b64decode(e["delta"])
            for _, e in self.events
            if e["type"] == "response.audio.delta" and e["response_id"] == response_id
        )
        return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0

    def close(self) -> None:
        self._running = False
        self._connection.__exit__(None, None, None)
