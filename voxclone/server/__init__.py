"""The HTTP front end: FastAPI routes that parse input, call the core, and format output."""

from .app import create_app

__all__ = ["create_app"]
