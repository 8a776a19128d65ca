"""The one typed place for configuration: environment variables (VOXCLONE_*) and an optional TOML file.

Built once (by the CLI or `create_app`) and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_DATA_DIR = Path(platformdirs.user_data_dir("voxclone", appauthor=False))
DEFAULT_MODEL_CACHE_DIR = Path(platformdirs.user_cache_dir("voxclone", appauthor=False))


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

    # Engines
    disabled_engines: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Installed engines not to run (listed as disabled)."
    )
    clone_engine: str = Field("kokoro", description="Engine new cloned voices are made for.")
    engine_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings of third-party engines, by engine name (a TOML table per engine)."
    )

    # Cache
    cache_size_bytes: int = Field(1 << 30, ge=0, description="Bound of the on-disk audio cache (LRU).")

    # Work
    synthesis_workers: int = Field(0, ge=0, description="Synthesis threads; 0 = CPU count, or 1 if Kokoro runs on OpenVINO.")
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

    # Limits
    max_text_chars: int = Field(5000, ge=1, description="Longest text one request may speak (413 beyond).")
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest upload (request body) in bytes.")
    max_upload_seconds: float = Field(600.0, gt=0, description="Longest recording accepted for cloning.")
    min_speech_seconds: float = Field(3.0, ge=0, description="Least speech (after VAD trimming) a clone needs.")
    max_voices: int = Field(200, ge=1, description="Most cloned voices the library holds.")
    rate_limit: str = Field("120/minute", description="Per key (or per IP without keys), `limits` syntax.")

    # Exposure
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Keys that may do everything (admin scope).")
    keys_file: Path | None = Field(None, description="Hashed keys with scopes (default DATA_DIR/keys.json), managed by `voxclone keys`.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Allowed origins: exact, or https://*.example.com for subdomains."
    )
    allow_public_without_keys: bool = Field(
        False, description="Serve on a non-loopback address even though no API keys are configured."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Server log level.")

    # Provenance and consent (administrators' settings: the law where you serve may require them on)
    watermark: bool = Field(
        True, description="Mark every generated audio inaudibly (EU AI Act Art. 50); off only for private installations."
    )
    consent: Literal["auto", "on", "off"] = Field(
        "auto", description="Cloning needs the speaker's recorded consent: auto = on whenever API keys are on."
    )
    consent_ttl_s: float = Field(300.0, gt=0, le=3600, description="How long a consent challenge may be answered.")

    @field_validator("api_keys", "cors_origins", "extra_voice_paths", "disabled_engines", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        # Environment variables hold lists as "a,b,c"; JSON lists still work.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

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
    def keys_path(self) -> Path:
        return self.keys_file or self.data_dir / "keys.json"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "voices.sqlite3"

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "audit.jsonl"

    def __repr__(self) -> str:  # never show keys, even in a debugger or a log line
        shown = self.model_dump(exclude={"api_keys"})
        return f"Settings({shown}, api_keys=<{len(self.api_keys)} hidden>)"

    __str__ = __repr__


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from a TOML file (if given), then environment variables, then explicit overrides."""
    from_file: dict[str, Any] = {}
    if config_file is not None:
        with open(config_file, "rb") as f:
            from_file = tomllib.load(f)
    env = Settings()  # environment over defaults
    merged = {**from_file, **env.model_dump(exclude_unset=True), **overrides}
    return Settings(**merged)
