"""The one typed place for configuration: environment variables (VOXCLONE_*) and an optional TOML file.

Built once (by the CLI or `create_app`) and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_DATA_DIR = Path(platformdirs.user_data_dir("voxclone", appauthor=False))
DEFAULT_MODEL_CACHE_DIR = Path(platformdirs.user_cache_dir("voxclone", appauthor=False))
LOOPBACK = ("127.0.0.0/8", "::1")  # the proxies trusted by default: one on the same machine
# s3://bucket[/prefix]: a bucket name as S3 allows it, then plain path parts (no `.`/`..`, nothing hidden)
_BLOB_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_][A-Za-z0-9_.-]*)*/?$")
_ROOT_PATH = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$")


# Settings that hold secrets: never shown, logged or passed where others can read them.
SECRET_SETTINGS = frozenset({"api_keys", "llm_api_key", "database_url", "elevenlabs_api_key"})


class Settings(BaseSettings):
    """Every knob voxclone has, with its default. See README "Settings"."""

    model_config = SettingsConfigDict(env_prefix="VOXCLONE_", extra="forbid")

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Voice library, uploaded samples and audio cache.")
    default_voice: str = Field("jm_kumo", description="Voice used when a request names none.")
    preload: bool = Field(True, description="Load models at start-up (else on first use).")
    extra_voice_paths: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Voice model files to add as voices, each read by the engine that knows its kind: Kokoro packs (.npy/.pt), Piper .onnx (+ .onnx.json).",
    )

    # Shared library (several processes or machines: see README "Scaling out")
    database_url: SecretStr | None = Field(
        None,
        description="Where the library lives: unset = DATA_DIR/voices.sqlite3 with voice files in DATA_DIR/voices; "
        "postgresql://user:password@host/db = shared by every process given it, voice files and samples as rows "
        "(or in BLOB_URL's bucket), "
        "API keys in it too (the `scale` extra). Never logged.",
    )
    blob_url: str | None = Field(
        None,
        description="s3://bucket/prefix = voice files and samples as objects of that bucket instead (AWS or an "
        "S3-compatible store; credentials from AWS_* variables or the AWS config; the `scale` extra); rows stay in "
        "the library. One prefix per library.",
    )
    blob_endpoint: str | None = Field(
        None,
        description="Endpoint of an S3-compatible store (MinIO, Ceph...) holding BLOB_URL's bucket, e.g. "
        "http://minio:9000; unset = AWS, or AWS_ENDPOINT_URL.",
    )
    job_lease_s: float = Field(
        30.0,
        ge=1,
        description="An enrolment job a worker stops renewing for this long (it died) is taken over by another.",
    )
    job_poll_s: float = Field(
        1.0, gt=0, description="How often an enrolment worker looks for jobs submitted elsewhere."
    )
    job_checkpoint_s: float = Field(
        30.0,
        ge=0,
        description="How often a running job's checkpoints (the deep fit's) are copied into the database at most, "
        "for a worker on another machine that takes the job over to resume from.",
    )
    run_enrolments: bool = Field(
        True, description="This process runs enrolment jobs (off: it only queues them, for workers elsewhere to run)."
    )
    rate_limit_storage: Literal["auto", "memory", "database"] = Field(
        "auto",
        description="Where requests are counted for the rate limit: memory (this process), database (shared by "
        "every process on the library); auto = database with a database URL, else memory.",
    )
    rate_limit_sync_s: float = Field(
        0.5,
        ge=0,
        description="With the rate limit counted in the database: a process counts a caller there at most once per "
        "this many seconds and admits it from memory in between (a caller near its limit is counted at once); "
        "0 = every request is a transaction (exact across processes, a few ms more per request).",
    )

    # Engines
    disabled_engines: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Installed engines not to run (listed as disabled)."
    )
    clone_engine: str = Field("kokoro", description="Engine new cloned voices are made for.")
    engine_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings of third-party engines, by engine name (a TOML table per engine)."
    )

    # Remote engines: ElevenLabs (its voices appear in the library; requests speak through its API)
    elevenlabs_api_key: SecretStr | None = Field(
        None, description="An ElevenLabs API key: its account's voices join the library (never logged or shown)."
    )
    elevenlabs_url: str = Field(
        "https://api.elevenlabs.io", description="ElevenLabs' API base (or a compatible server's)."
    )
    elevenlabs_model_id: str = Field("eleven_multilingual_v2", description="ElevenLabs model that speaks its voices.")
    elevenlabs_timeout_s: float = Field(30.0, gt=0, description="Longest wait for ElevenLabs before a 504.")
    elevenlabs_refresh_s: float = Field(300.0, gt=0, description="How often the account's voice list is refreshed.")

    # Model weights that are not shipped on PyPI (`voxclone models pull NAME`)
    model_dir: Path | None = Field(
        None, description="Where `voxclone models pull` puts weights (default DATA_DIR/models)."
    )
    model_paths: Annotated[dict[str, Path], NoDecode] = Field(
        default_factory=dict,
        description="Weights copied in by hand, by model name: `bark=/srv/bark,xtts_v2=/srv/xtts` (`--model-path`).",
    )
    model_manifest: Path | None = Field(
        None,
        description="A JSON file of model entries that add to or replace the built-in manifest (mirrors, own weights).",
    )
    allow_downloads: bool = Field(
        False,
        description="Let the server download missing weights itself (`--allow-downloads`); else only `models pull` does.",
    )
    torch_threads: int = Field(
        0, ge=0, description="Threads torch uses on the CPU (coqui engines; process-wide); 0 = torch's default."
    )
    model_idle_ttl_s: float = Field(0.0, ge=0, description="Unload a torch model idle this long (0 = keep it loaded).")
    openvoice_base_voice: str = Field(
        "jm_kumo",
        description="Voice that OpenVoice clones (`engine=openvoice`) speak with, in the speaker's tone colour.",
    )
    xtts_accept_cpml: bool = Field(
        False,
        description="Enable XTTS-v2: its weights are under the Coqui Public Model License (CPML), non-commercial use only.",
    )

    # Cache
    cache_size_bytes: int = Field(1 << 30, ge=0, description="Bound of the on-disk audio cache (LRU).")

    # Work
    synthesis_workers: int = Field(
        0, ge=0, description="Synthesis threads; 0 = CPU count, or 1 if Kokoro runs on OpenVINO."
    )
    onnx_threads: int = Field(0, ge=0, description="Threads per model call (onnxruntime, OpenVINO); 0 = CPU count.")
    kokoro_runtime: Literal["auto", "openvino", "onnxruntime"] = Field(
        "auto", description="Kokoro's runtime; auto picks OpenVINO (bf16) where the CPU has bf16, else onnxruntime."
    )
    model_cache_dir: Path = Field(
        DEFAULT_MODEL_CACHE_DIR, description="Models derived from the shipped ones (built once, shared by data dirs)."
    )
    queue_size: int = Field(16, ge=1, description="Synthesis requests waiting beyond the workers before 503.")
    enrolment_workers: int = Field(1, ge=1, description="Voice enrolments run at once.")
    enrolment_queue: int = Field(4, ge=0, description="Enrolments waiting before new ones are refused.")
    enrolment_time_budget_s: float = Field(90.0, gt=0, description="Wall seconds one voice's clone search may take.")
    deep_workers: int = Field(
        1,
        ge=1,
        description="Deep clone fits run at once (each its own niced process; they never hold up instant clones).",
    )
    deep_threads: int = Field(0, ge=0, description="Threads of one deep clone fit; 0 = CPU count.")
    deep_fit_budget_s: float = Field(
        600.0,
        gt=0,
        description="Wall seconds one deep clone's fit may take (aligning and the final check come on top).",
    )

    # Limits
    max_text_chars: int = Field(5000, ge=1, description="Longest text one request may speak (413 beyond).")
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest upload (request body) in bytes.")
    max_upload_seconds: float = Field(600.0, gt=0, description="Longest recording accepted for cloning.")
    min_speech_seconds: float = Field(3.0, ge=0, description="Least speech (after VAD trimming) a clone needs.")
    max_voices: int = Field(200, ge=1, description="Most cloned voices the library holds.")
    rate_limit: str = Field(
        "120/minute",
        description="Per key or token, else per client address (as trusted proxies report it); `limits` syntax.",
    )

    # Listening: transcription, speech-to-speech, realtime conversation
    transcription_model: Literal["tiny.en", "base"] = Field(
        "base",
        description="Whisper model for transcription and speech-to-speech when a request names none (or whisper-1).",
    )
    transcription_workers: int = Field(1, ge=1, description="Transcriptions run at once (each on its own thread).")
    transcription_queue: int = Field(8, ge=0, description="Transcriptions waiting beyond the workers before 503.")
    realtime_transcription_model: Literal["tiny.en", "base"] = Field(
        "tiny.en", description="Whisper model that hears realtime conversation turns."
    )
    realtime_sessions_per_key: int = Field(
        2, ge=1, description="Realtime conversations open at once per API key (or per IP without keys)."
    )
    realtime_idle_timeout_s: float = Field(
        120.0, gt=0, description="A realtime conversation with no message for this long is closed."
    )
    llm_url: str | None = Field(
        None,
        description="OpenAI-compatible chat completions base URL that writes realtime replies (e.g. http://127.0.0.1:11434/v1); unset: the session repeats what it hears.",
    )
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the chat endpoint.")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key for the chat endpoint (never logged).")
    llm_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait (seconds) for the chat endpoint to answer, or to send more of its reply."
    )

    # Exposure
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Keys that may do everything (admin scope)."
    )
    keys_file: Path | None = Field(
        None, description="Hashed keys with scopes (default DATA_DIR/keys.json), managed by `voxclone keys`."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Allowed origins: exact, or https://*.example.com for subdomains."
    )
    allow_public_without_keys: bool = Field(
        False,
        description="Serve without authentication beyond loopback: on a non-loopback address, or to clients "
        "that reach a loopback server through a proxy or tunnel (`--allow-public`).",
    )

    # Behind a proxy or tunnel
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK),
        description="Proxies (addresses or CIDRs) whose Forwarded, X-Forwarded-For or CF-Connecting-IP "
        "header names the client; anyone else's are ignored.",
    )
    root_path: str = Field(
        "", description="Path prefix the server is reached under through a proxy, e.g. /voice (`--root-path`)."
    )

    # Zero-trust identity: bearer JWTs from an OIDC issuer or Cloudflare Access, as an alternative to keys
    oidc_issuer: str | None = Field(
        None,
        description="Issuer URL of accepted JWTs (`iss`), e.g. https://TEAM.cloudflareaccess.com; "
        "setting it turns authentication on.",
    )
    oidc_audience: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Accepted `aud` values (an Access application's AUD tag, an OIDC client id); required with an issuer.",
    )
    oidc_jwks_url: str | None = Field(
        None,
        description="Where the issuer's signing keys are (default: Access's /cdn-cgi/access/certs, else "
        "the issuer's OpenID discovery document).",
    )
    oidc_scope_claim: str = Field(
        "scope",
        description="Claim whose values grant scopes: a space-separated string or a list (e.g. scope, groups, email).",
    )
    oidc_speak_values: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["speak"],
        description="Claim values that grant the `speak` scope; `*` grants it to every verified token.",
    )
    oidc_manage_values: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["manage"],
        description="Claim values that grant the `manage` scope (which includes `speak`); `*` for every verified token.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Server log level.")

    # Provenance and consent (administrators' settings: the law where you serve may require them on)
    watermark: bool = Field(
        True,
        description="Mark every generated audio inaudibly (EU AI Act Art. 50); off only for private installations.",
    )
    consent: Literal["auto", "on", "off"] = Field(
        "auto", description="Cloning needs the speaker's recorded consent: auto = on whenever API keys are on."
    )
    consent_ttl_s: float = Field(300.0, gt=0, le=3600, description="How long a consent challenge may be answered.")
    # d-vector cosine of a consent reading to each sample: the same speaker scored 0.775-0.948, another up
    # to 0.760, over 80 LibriSpeech pairs (bench/consent.py; README "Provenance and consent").
    consent_min_similarity: float = Field(
        0.75, gt=0, lt=1, description="How close a consent reading's voice must be to each sample (d-vector cosine)."
    )

    @field_validator(
        "api_keys",
        "cors_origins",
        "extra_voice_paths",
        "disabled_engines",
        "trusted_proxies",
        "oidc_audience",
        "oidc_speak_values",
        "oidc_manage_values",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        # Environment variables hold lists as "a,b,c"; JSON lists still work.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("model_paths", mode="before")
    @classmethod
    def _split_pairs(cls, value: Any) -> Any:
        # "bark=/srv/bark,xtts=/srv/xtts" from the environment; a JSON object or TOML table works too.
        if isinstance(value, str):
            if value.lstrip().startswith("{"):
                return json.loads(value)
            pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
            if not all(len(pair) == 2 for pair in pairs):
                raise ValueError("model paths are NAME=PATH pairs separated by commas")
            return {name.strip(): path.strip() for name, path in pairs}
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as e:
                raise ValueError(
                    f"trusted proxy {entry!r} is not an address or CIDR (e.g. 10.0.0.5, 10.0.0.0/8, ::1)"
                ) from e
        return value

    @field_validator("blob_url")
    @classmethod
    def _check_blob_url(cls, value: str | None) -> str | None:
        if value is None or _BLOB_URL.match(value):
            return value
        raise ValueError(
            f"blob URL {value!r} must look like s3://bucket or s3://bucket/prefix (a bucket name: 3-63 of a-z 0-9 . -)"
        )

    @field_validator("blob_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None or re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            return value
        raise ValueError(f"blob endpoint {value!r} must be an http:// or https:// address, e.g. http://minio:9000")

    @model_validator(mode="after")
    def _check_blob_endpoint_has_url(self) -> Settings:
        if self.blob_endpoint and not self.blob_url:
            raise ValueError("blob_endpoint needs blob_url (the bucket it holds)")
        return self

    @field_validator("root_path")
    @classmethod
    def _check_root_path(cls, value: str) -> str:
        value = value.rstrip("/")
        if not _ROOT_PATH.match(value):
            raise ValueError(f"root path {value!r} must look like /voice or /apps/voice")
        return value

    @field_validator("oidc_issuer", "oidc_jwks_url")
    @classmethod
    def _check_https(cls, value: str | None) -> str | None:
        # Keys fetched over plain HTTP could be swapped on the way; only a loopback issuer may use it.
        if value is None or value.startswith("https://") or _is_loopback_url(value):
            return value
        raise ValueError(f"{value!r} must be an https:// URL (plain http only on loopback)")

    @model_validator(mode="after")
    def _check_oidc(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("oidc_audience is required with oidc_issuer: tokens for any other application would pass")
        if (self.oidc_audience or self.oidc_jwks_url) and not self.oidc_issuer:
            raise ValueError("oidc_audience and oidc_jwks_url need oidc_issuer")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    @property
    def voices_dir(self) -> Path:
        return self.data_dir / "voices"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def weights_dir(self) -> Path:
        """Where pulled model weights live: `model_dir`, else DATA_DIR/models."""
        return self.model_dir or self.models_dir

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.data_dir / "keys.json"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "voices.sqlite3"

    @property
    def audit_path(self) -> Path:
        """Where earlier voxclone kept this machine's audit log (JSON lines); imported into the database once."""
        return self.data_dir / "audit.jsonl"

    @property
    def db_url(self) -> str:
        """The library's database URL: the setting, else the data dir's SQLite file."""
        url = self.database_url
        if url is not None:  # a SecretStr, or a plain string put in by model_copy (which does not validate)
            return url.get_secret_value() if isinstance(url, SecretStr) else str(url)
        return f"sqlite:///{self.db_path}"

    @property
    def voice_files_dir(self) -> Path:
        """Where voice files kept in the database or a bucket are written out for the engines of this machine."""
        return self.data_dir / "voice-files"

    @property
    def shared_rate_limits(self) -> bool:
        return self.rate_limit_storage == "database" or (
            self.rate_limit_storage == "auto" and self.database_url is not None
        )

    def __repr__(self) -> str:  # never show keys, even in a debugger or a log line
        shown = self.model_dump(exclude=set(SECRET_SETTINGS))
        llm_key = "<hidden>" if self.llm_api_key else None
        database = "<hidden>" if self.database_url else None
        return (
            f"Settings({shown}, api_keys=<{len(self.api_keys)} hidden>, llm_api_key={llm_key}, database_url={database})"
        )

    __str__ = __repr__


def _is_loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return url.startswith("http://")
    try:
        return url.startswith("http://") and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from a TOML file (if given), then environment variables, then explicit overrides."""
    from_file: dict[str, Any] = {}
    if config_file is not None:
        with open(config_file, "rb") as f:
            from_file = tomllib.load(f)
    env = Settings()  # environment over defaults
    merged = {**from_file, **env.model_dump(exclude_unset=True), **overrides}
    return Settings(**merged)
