"""A loopback OpenAI-compatible chat endpoint that streams its reply word by word, for tests and benches.

    python tests/chat_stub.py --port 8765 [--delay 0.02]

`POST /v1/chat/completions` with `"stream": true` answers server-sent `chat.completion.chunk` events:
the first word at once, then one word every `--delay` seconds. The reply repeats the last user message
("You said: ...") followed by a fixed sentence, so a test can check that the words it spoke were heard.
It also records every request it got (`GET /requests`), so a test can check what the server sent it.
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY_TAIL = "That is good to hear."
_requests: list[dict] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no chunked encoding needed
    delay = 0.02

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        body = json.dumps(_requests).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        _requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": request})
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        heard = next((m["content"] for m in reversed(request.get("messages", [])) if m.get("role") == "user"), "")
        words = f"You said: {heard.strip()} {REPLY_TAIL}".split(" ")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for index, word in enumerate(words):
            chunk = {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": ("" if index == 0 else " ") + word}}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(self.delay)
        self.wfile.write(b"data: [DONE]\n\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.02)
    args = parser.parse_args()
    _Handler.delay = args.delay
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
