"""Operational routes: health (with every engine's availability) and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..runtime import Runtime
from . import deps

router = APIRouter(tags=["ops"])


@router.get("/health", summary="200 once the default voice's engine is loaded and able to speak")
async def health(runtime: Annotated[Runtime, Depends(deps.runtime)]) -> Any:
    engines = runtime.engines
    report = {}
    for name in engines.all_names():
        availability = engines.availability(name)
        report[name] = {
            "title": engines.title(name),
            "state": availability.state if not availability.ready or engines[name].loaded else "not_loaded",
            "detail": availability.detail or None,
            "fix": availability.fix,
        }
    default = runtime.health_voice_engine()
    ready = default is not None and report.get(default, {}).get("state") == "ready"
    return JSONResponse({"status": "ok" if ready else "loading", "engines": report}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(runtime: Annotated[Runtime, Depends(deps.runtime)]) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
