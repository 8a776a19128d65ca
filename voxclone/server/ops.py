"""Operational routes: health and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..synthesis import Speaker
from . import deps

router = APIRouter(tags=["ops"])


@router.get("/health", summary="200 once the default voice's engine is loaded and able to speak")
async def health(speaker: Annotated[Speaker, Depends(deps.speaker)]) -> Any:
    engines = {name: engine.loaded for name, engine in speaker.engines.items()}
    ready = engines.get("kokoro", False)
    return JSONResponse({"status": "ok" if ready else "loading", "engines": engines}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(speaker: Annotated[Speaker, Depends(deps.speaker)]) -> Response:
    return Response(speaker.metrics.render(), media_type=CONTENT_TYPE_LATEST)
