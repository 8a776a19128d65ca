"""The OpenAI Realtime API's WebSocket, `/v1/realtime`: a voice conversation in a voxclone voice.

Keys: `Authorization: Bearer`, `xi-api-key`, `?xi_api_key=`, or (browsers, which cannot set headers on
a WebSocket) the subprotocol `openai-insecure-api-key.KEY` next to `realtime`, as OpenAI's own
browser clients send it. `?voice=` picks the session's voice at once (else `session.update`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..errors import VoxcloneError
from ..realtime import Sessions
from ..settings import Settings

router = APIRouter(tags=["realtime"])


def _client(socket: WebSocket) -> str:
    """Who is calling, for the sessions-per-key limit: their key's id, or their address without keys."""
    client_id = socket.scope.get("state", {}).get("client_id")
    return str(client_id) if client_id else "ip:" + (socket.client.host if socket.client else "unknown")


async def _refuse(socket: WebSocket, error: VoxcloneError) -> None:
    body = {
        "type": "error",
        "event_id": "event_refused",
        "error": {"type": "invalid_request_error", "code": error.code, "message": str(error)},
    }
    await socket.send_json(body)
    await socket.close(code=1008, reason=str(error)[:120])


@router.websocket("/v1/realtime")
async def realtime(socket: WebSocket) -> None:
    runtime = socket.app.state.runtime
    sessions: Sessions = runtime.realtime
    settings: Settings = runtime.settings
    offered = [p.strip() for p in socket.headers.get("sec-websocket-protocol", "").split(",")]
    await socket.accept(subprotocol="realtime" if "realtime" in offered else None)

    async def send(event: dict[str, Any]) -> None:
        await socket.send_json(event)

    try:
        async with sessions.conversation(_client(socket), send, socket.query_params.get("voice")) as session:
            while True:
                try:
                    raw = await asyncio.wait_for(socket.receive_text(), settings.realtime_idle_timeout_s)
                except TimeoutError:
                    await session.error(
                        f"no event for {settings.realtime_idle_timeout_s:.0f} s; closing", "idle_timeout"
                    )
                    await socket.close(code=1000, reason="idle timeout")
                    return
                try:
                    event = json.loads(raw)
                except ValueError:
                    await session.error("each message is one JSON event", "invalid_json")
                    continue
                if not isinstance(event, dict):
                    await session.error("each message is one JSON event object", "invalid_event")
                    continue
                await session.handle(event)
    except WebSocketDisconnect:
        return
    except VoxcloneError as e:  # refused before the conversation began (sessions per key, unknown voice)
        await _refuse(socket, e)
