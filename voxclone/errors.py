"""Domain exceptions. The HTTP edge maps each to a status code in one table (server/errors.py)."""

from __future__ import annotations


class VoxcloneError(Exception):
    """Base of every error voxclone raises on purpose; its message is safe to show a client."""

    code = "error"


class VoiceNotFound(VoxcloneError):
    code = "voice_not_found"


class VoiceNotReady(VoxcloneError):
    code = "voice_not_ready"


class VoiceConflict(VoxcloneError):
    code = "voice_conflict"


class BadInput(VoxcloneError):
    code = "bad_input"


class BadAudio(BadInput):
    code = "bad_audio"


class UnsupportedFormat(BadInput):
    code = "unsupported_format"


class LimitExceeded(VoxcloneError):
    """A configured limit was hit; `limit` names it so clients know what to change."""

    code = "limit_exceeded"

    def __init__(self, message: str, *, limit: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after


class Busy(VoxcloneError):
    """The synthesis queue is full; the client should retry after `retry_after` seconds."""

    code = "busy"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EngineUnavailable(VoxcloneError):
    code = "engine_unavailable"


class Unauthorized(VoxcloneError):
    code = "unauthorized"


class Forbidden(VoxcloneError):
    code = "forbidden"


class IdentityUnavailable(VoxcloneError):
    """Tokens cannot be checked now: the issuer's signing keys could not be fetched."""

    code = "identity_unavailable"


class UpstreamError(VoxcloneError):
    """A service voxclone speaks through (ElevenLabs, a model host) answered with an error or not at all."""

    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"


class UpstreamRateLimited(UpstreamError):
    """The upstream refused for quota or rate; the client should retry after `retry_after` seconds."""

    code = "upstream_rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConsentRefused(Forbidden):
    """Cloning was refused for want of the speaker's consent; `check` names what failed (missing, challenge,
    words, speaker) and `scores` the measured figures."""

    code = "consent_refused"

    def __init__(self, message: str, *, check: str, scores: dict[str, float] | None = None) -> None:
        super().__init__(message)
        self.check = check
        self.scores = scores or {}
