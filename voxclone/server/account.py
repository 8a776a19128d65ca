"""What clients ask before they speak: the models they may name (/v1/models, for OpenAI's and
ElevenLabs' SDKs alike) and their limits (/v1/user/subscription, ElevenLabs' quota check).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from ..engines import Engine
from ..runtime import Runtime
from . import deps
from .errors import is_elevenlabs_client

router = APIRouter(tags=["account"])
_LANGUAGES = {"en": "English", "ja": "Japanese"}
_NO_LIMIT = 2**31 - 1  # what character_limit adds when no rate limit is set


def _languages(engine: Engine) -> list[dict[str, str]]:
    codes = sorted({v.labels["language"] for v in engine.stock_voices() if "language" in v.labels})
    return [{"language_id": code, "name": _LANGUAGES.get(code, code)} for code in codes]


def _availability(runtime: Runtime, name: str) -> dict[str, Any]:
    """voxclone's own fields: whether the engine can speak here, and the command that fixes it if not."""
    availability = runtime.engines.availability(name)
    return {"available": availability.ready, "unavailable_reason": availability.detail or None, "fix": availability.fix}


def _elevenlabs_model(engine: Engine, runtime: Runtime) -> dict[str, Any]:
    settings = runtime.settings
    return {
        "model_id": engine.name,
        "name": engine.title or engine.name,
        "description": (type(engine).__doc__ or "").strip().split("\n")[0],
        "can_be_finetuned": False,
        "can_do_text_to_speech": True,
        "can_do_voice_conversion": False,
        "can_use_style": False,
        "can_use_speaker_boost": False,
        "serves_pro_voices": False,
        "token_cost_factor": 1.0,
        "requires_alpha_access": False,
        "max_characters_request_free_user": settings.max_text_chars,
        "max_characters_request_subscribed_user": settings.max_text_chars,
        "maximum_text_length_per_request": settings.max_text_chars,
        "languages": _languages(engine),
        **_availability(runtime, engine.name),
    }


def _openai_model(engine: Engine, runtime: Runtime) -> dict[str, Any]:
    # `created`: when this server first had a voice of the engine (its stock voices, for most engines).
    voices = runtime.library.all()
    first = min((v.created_at for v in voices if v.engine == engine.name), default=min(v.created_at for v in voices))
    return {
        "id": engine.name,
        "object": "model",
        "created": int(first),
        "owned_by": "voxclone",
        **_availability(runtime, engine.name),
    }


@router.get(
    "/v1/models",
    summary="The engines, as models: ElevenLabs' list for ElevenLabs clients, OpenAI's object for the rest",
    description="ElevenLabs' shape when the request carries `xi-api-key` or `X-Fern-*` headers (what ElevenLabs' "
    "SDKs send), else OpenAI's `{object: list, data}`. Speech requests accept any model name; the voice picks the engine.",
)
def list_models(request: Request, runtime: Annotated[Runtime, Depends(deps.runtime)]) -> Any:
    engines = list(runtime.engines.values())
    if is_elevenlabs_client(request.headers):
        return [_elevenlabs_model(engine, runtime) for engine in engines]
    return {"object": "list", "data": [_openai_model(engine, runtime) for engine in engines]}


@router.get("/v1/user/subscription", summary="This caller's limits, in ElevenLabs' subscription shape")
async def subscription(
    request: Request,
    runtime: Annotated[Runtime, Depends(deps.runtime)],
) -> dict[str, Any]:
    """voxclone has no monthly quota; what bounds a caller is the rate limit and the text limit.

    `character_count` is what this server has accepted for speech since it started (every caller);
    `character_limit` is that plus what this caller may still send before its rate-limit window
    frees a request (requests left x max_text_chars), so a client's quota check passes exactly when
    voxclone would accept the text. `next_character_count_reset_unix` is when that window frees one.
    """
    settings = runtime.settings
    used = runtime.metrics.characters_total()
    rate = request.app.state.rate_limit
    if rate is None:
        room, reset = _NO_LIMIT, None
    else:
        left, reset_at = await rate.window(request.scope)
        room, reset = left * settings.max_text_chars, int(reset_at)
    clones = runtime.library.count("cloned")
    return {
        "tier": "voxclone",
        "status": "active",
        "character_count": used,
        "character_limit": used + room,
        "next_character_count_reset_unix": reset,
        "max_character_limit_extension": 0,
        "max_credit_limit_extension": 0,
        "can_extend_character_limit": False,
        "allowed_to_extend_character_limit": False,
        "voice_slots_used": clones,
        "voice_limit": settings.max_voices,
        "voice_add_edit_counter": clones,
        "max_voice_add_edits": None,
        "professional_voice_slots_used": 0,
        "professional_voice_slots_used_in_workspace": 0,
        "professional_voice_limit": 0,
        "can_extend_voice_limit": False,
        "can_use_instant_voice_cloning": True,
        "can_use_professional_voice_cloning": False,
        "current_overage": {"amount": "0", "currency": "usd"},
        "open_invoices": [],
        "has_open_invoices": False,
        # voxclone's own figures, for clients that know them
        "max_characters_per_request": settings.max_text_chars,
        "rate_limit": settings.rate_limit or None,
        "characters_counted_since_unix": int(runtime.metrics.started_at),
    }
