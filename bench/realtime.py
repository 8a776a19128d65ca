"""Voice-to-voice latency and barge-in in /v1/realtime (issue 19).

    .venv/bin/python bench/realtime.py [--turns 20] [--barge-ins 5] [--voice jm_kumo]

A voxclone server process (bench/server.py) with VOXCLONE_LLM_URL pointing at tests/chat_stub.py, a
loopback OpenAI-compatible chat server that streams its first token at once. A client
(tests/realtime_client.py) sends the first utterance of a different LibriSpeech clip each turn, as
pcm16 24 kHz in 20 ms frames in real time, with silence frames between, `silence_duration_ms` 300.
- latency: from the moment the utterance's last frame was sent to the first `response.audio.delta`;
- barge-in: during a reply, the client speaks again; from its first speech frame to
  `input_audio_buffer.speech_started` (where a client stops playback) and to the last audio delta of
  the interrupted reply (none arriving after speech_started means the server sent nothing more).
Writes bench/out/realtime.json.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from realtime_client import Talker, utterance  # noqa: E402
from server import ServerProcess, save  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data" / "librispeech_train-clean-100"


def _chat_stub() -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(HERE.parent / "tests" / "chat_stub.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process, f"http://127.0.0.1:{port}/v1"


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--barge-ins", type=int, default=5)
    parser.add_argument("--voice", default="jm_kumo")
    args = parser.parse_args()
    clips = sorted(DATA.glob("*.flac"))[: args.turns + args.barge_ins]
    utterances = [utterance(c) for c in clips]
    stub, url = _chat_stub()
    try:
        with ServerProcess(VOXCLONE_LLM_URL=url) as server:
            talker = Talker(server.url.replace("http", "ws") + f"/v1/realtime?voice={args.voice}")
            talker.send(
                {
                    "type": "session.update",
                    "session": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}},
                }
            )
            talker.wait_for("session.updated")
            talker.say(utterances[-1])  # warm-up turn: models load, first graph run
            since, _, _ = talker.wait_for("response.done", timeout=180)
            latencies, turns = [], []
            for speech in utterances[: args.turns]:
                talker.say(speech)
                heard_index, _, heard = talker.wait_for(
                    "conversation.item.input_audio_transcription.completed", since=since + 1, timeout=60
                )
                first, first_at, _ = talker.wait_for("response.audio.delta", since=heard_index, timeout=60)
                latency = first_at - talker.speech_sent[-1][1]
                since, _, _ = talker.wait_for("response.done", since=first, timeout=120)
                latencies.append(latency)
                turns.append({"heard": heard["transcript"], "latency_s": round(latency, 3)})
                print(f"turn {len(turns)}: {latency:.3f} s  {heard['transcript'][:60]}", flush=True)
            barge = []
            for speech in utterances[args.turns :]:
                talker.ask("Tell me a long story about the sea, the ships, the lighthouse and its keeper")
                first, _, delta = talker.wait_for("response.audio.delta", since=since + 1, timeout=60)
                began = len(talker.speech_began)
                talker.say(speech)
                _, started_at, _ = talker.wait_for("input_audio_buffer.speech_started", since=first, timeout=30)
                since, _, done = talker.wait_for("response.done", since=first, timeout=30)
                spoke_at = talker.speech_began[began]
                deltas = [
                    t
                    for t, e in talker.events
                    if e["type"] == "response.audio.delta" and e["response_id"] == delta["response_id"]
                ]
                barge.append(
                    {
                        "speech_started_after_s": round(started_at - spoke_at, 3),
                        "last_audio_after_s": round(max(deltas) - spoke_at, 3),
                        "audio_after_speech_started": sum(1 for t in deltas if t > started_at),
                        "status": done["response"]["status"],
                    }
                )
                since, _, _ = talker.wait_for(
                    "response.done", since=since + 1, timeout=120
                )  # the barge-in turn's own reply
                print(f"barge-in: {barge[-1]}", flush=True)
            talker.close()
    finally:
        stub.kill()
        stub.wait()
    stops = [b["speech_started_after_s"] for b in barge]
    save(
        "realtime",
        {
            "voice": args.voice,
            "silence_duration_ms": 300,
            "latency_s": {
                "median": round(statistics.median(latencies), 3),
                "p95": round(_p95(latencies), 3),
                "max": round(max(latencies), 3),
            },
            "barge_in_s": {
                "speech_started_median": round(statistics.median(stops), 3),
                "speech_started_max": round(max(stops), 3),
                "audio_deltas_after_speech_started": sum(b["audio_after_speech_started"] for b in barge),
            }
            if barge
            else None,
            "turns": turns,
            "barge_ins": barge,
        },
    )


if __name__ == "__main__":
    main()
