"""Prometheus counters for one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.started_at = time.time()
        self.registry = CollectorRegistry()
        self.requests = Counter("voxclone_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.synthesis_seconds = Counter(
            "voxclone_synthesis_seconds", "Wall seconds spent synthesising", ["engine"], registry=self.registry
        )
        self.audio_seconds = Counter(
            "voxclone_audio_seconds", "Seconds of audio synthesised", ["engine"], registry=self.registry
        )
        self.characters = Counter(
            "voxclone_characters", "Characters of text accepted for speech", registry=self.registry
        )
        self.cache_hits = Counter("voxclone_cache_hits", "Audio cache hits", registry=self.registry)
        self.cache_misses = Counter("voxclone_cache_misses", "Audio cache misses", registry=self.registry)
        self.piece_cache_hits = Counter(
            "voxclone_piece_cache_hits", "Pieces of text whose audio came from the cache", registry=self.registry
        )
        self.first_audio = Histogram(
            "voxclone_time_to_first_audio_seconds",
            "Seconds from request to first audio chunk",
            buckets=(0.05, 0.1, 0.2, 0.35, 0.5, 1, 2, 5),
            registry=self.registry,
        )

    def characters_total(self) -> int:
        """Characters accepted for speech since this app started (what /v1/user/subscription reports)."""
        return int(sum(s.value for m in self.characters.collect() for s in m.samples if s.name.endswith("_total")))

    def render(self) -> bytes:
        return generate_latest(self.registry)
