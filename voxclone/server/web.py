"""The web page: `/` and its static files under `/web/`, shipped inside the package (no build step)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
WEB_DIR = resources.files("voxclone") / "web"


@router.get("/", response_class=HTMLResponse)
async def index() -> FileResponse:
    return FileResponse(str(WEB_DIR / "index.html"), media_type="text/html")


def static_files() -> StaticFiles:
    return StaticFiles(directory=str(WEB_DIR))
