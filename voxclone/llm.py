"""A client for an OpenAI-compatible chat completions endpoint, streamed: the words of a realtime reply.

Any server that speaks `POST {base}/chat/completions` with `"stream": true` works (OpenAI, Ollama,
llama.cpp's server, vLLM, LocalAI). The key is sent as a bearer token and never logged or shown.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import SecretStr

from .errors import VoxcloneError


class ChatFailed(VoxcloneError):
    """The chat endpoint could not be reached or answered with an error."""

    code = "llm_failed"


class ChatClient:
    """Streams the text of replies; one HTTP connection pool per client (close it with `aclose`)."""

    def __init__(self, url: str, model: str, api_key: SecretStr | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
        self._http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)))

    async def stream(self, messages: list[dict[str, str]], *, temperature: float | None = None) -> AsyncIterator[str]:
        """The reply's text as it is written (content deltas); raises ChatFailed with a short reason."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
        if temperature is not None:
            body["temperature"] = temperature
        try:
            async with self._http.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    detail = (await response.aread())[:200].decode("utf-8", "replace")
                    raise ChatFailed(f"the chat endpoint answered {response.status_code}: {detail}")
                async for line in response.aiter_lines():
                    text = _delta(line)
                    if text is None:
                        return
                    if text:
                        yield text
        except httpx.HTTPError as e:
            raise ChatFailed(f"the chat endpoint failed: {type(e).__name__}") from e

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"ChatClient({self.url!r}, model={self.model!r})"  # never the key


def _delta(line: str) -> str | None:
    """The text in one server-sent line ('' for none), or None at the end of the stream."""
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        choices = json.loads(data).get("choices") or [{}]
        return str((choices[0].get("delta") or {}).get("content") or "")
    except (ValueError, AttributeError, TypeError):
        return ""
