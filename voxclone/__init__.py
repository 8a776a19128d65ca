"""voxclone: a self-hosted voice-cloning speech server."""

__version__ = "0.1.0"
