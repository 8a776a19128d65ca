"""voxclone on Ray Serve: the same HTTP app, its speech made by a pool of synthesis replicas and its
voices cloned by a pool of enrolment replicas, all sharing one library (VOXCLONE_DATABASE_URL).

Three deployments (README "Scaling out"):
- `api`: the FastAPI app as Serve's ingress, exactly as one process serves it (routes, the page, keys,
  limits, caches, sharing of identical requests), except that its engines are `ReplicaEngine`s: each
  piece of text is spoken by a synthesis replica, through a DeploymentHandle. Responses stream through
  Serve's HTTP proxy. It runs no enrolment: it queues jobs in the database.
- `synthesis`: replicas holding the engines (each holding `gpus_per_replica` GPUs, for engines that use one), autoscaled on the
  pieces waiting for them. A piece whose replica died is spoken again by another, so a stream survives
  a replica's death.
- `enrolment`: replicas that claim enrolment jobs from the database, so cloning never takes a
  synthesis replica's time; a dead one's jobs are taken over when their leases run out. Each asks Ray
  for `cpus_per_enrolment_replica` CPUs, and its deep fits use that many threads, so Ray places it
  where those cores are free (on KubeRay, adding a worker pod when none is).

`voxclone serve --ray` builds it with `build()`; `serve run voxclone.deploy:app` (or a RayService) with
`app(args)`. Every replica reads its settings from the environment (VOXCLONE_*), as a process does;
`overrides` carries what a command line gave.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import LoggingConfig

from .engines import AudioChunk, Engine, Engines, RemoteEngine, SpeakOptions, StockVoice, VoiceSpec, build_engines
from .errors import Busy, EngineUnavailable, VoxcloneError
from .runtime import Parts, Runtime
from .server import create_app
from .settings import Settings, load_settings

log = logging.getLogger("voxclone.deploy")
_ATTEMPTS = 3  # a piece is tried on this many replicas before its stream fails
# An upgrade replaces replicas one by one; a replica being replaced takes no new requests and has this
# long to finish the ones it has: the longest stream for the API, a piece for synthesis.
_API_DRAIN_S = 300.0
_SYNTHESIS_DRAIN_S = 60.0
_RETRY_PAUSE_S = 0.2
_CONTROLLER = "ray::ServeController"  # the title Ray gives Serve's controller process
# What a replica's death looks like to a caller: the piece is spoken again, elsewhere.
_REPLICA_GONE = (RayActorError, ReplicaUnavailableError, DeploymentUnavailableError)
# Ray's defaults suit batch jobs: workers run at nice 15 below Ray's own processes, a metrics pipeline
# samples every process, Serve's controller loops ten times a second. Where synthesis keeps every core
# busy, each of those is taken out of speech (bench/ray_overhead.py, README "Scaling out": an idle
# cluster's CPU falls from 4.8 to 3.1 CPU-seconds in 30 s, a piece in a replica at nice 15 took 12 % longer).
# A cluster started here gets these unless the environment says otherwise; a cluster joined takes its
# nodes' own (deploy/rayservice.yaml sets them).
QUIET_CLUSTER = {
    "RAY_worker_niceness": "0",  # replicas at the priority of Ray's own processes, as one process is
    "RAY_enable_metrics_collection": "0",  # Ray's and Serve's own metrics; voxclone's /metrics stays
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",  # the controller still checks replicas twice a second
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",
}
# The priority of the processes no request waits on: enrolment replicas ("cloning never slows speech"),
# and on a cluster started here Ray's GCS, dashboard and monitors and Serve's controller. On two cores
# a piece's two engine threads wait for each other, so every wake-up of theirs stalls both.
BACKGROUND_NICENESS = 10


@dataclass(frozen=True)
class Options:
    """How the application is laid out on the cluster."""

    replicas: int = 2  # synthesis replicas (the least, with autoscaling)
    max_replicas: int | None = None  # autoscale synthesis up to this many on waiting pieces
    enrolment_replicas: int = 1
    api_replicas: int = 1
    gpus_per_replica: float = 0.0  # 1: one synthesis replica per GPU (engines that use one: Bark, XTTS, OpenVoice)
    cpus_per_replica: float = 1.0  # Ray's CPU accounting for a synthesis replica
    cpus_per_enrolment_replica: float = 1.0  # ... for an enrolment replica: its clones' and deep fits' cores
    parts: str | None = None  # "module:function" returning a voxclone.runtime.Parts (tests, plugins)

    def least_cpus(self) -> float:
        """The CPUs Ray must have for every replica to start (before any autoscaling)."""
        return self.replicas * self.cpus_per_replica + self.enrolment_replicas * self.cpus_per_enrolment_replica


def _settings(overrides: Mapping[str, Any], **role: Any) -> Settings:
    return load_settings(**{**overrides, **role})


def _parts(path: str | None) -> Parts:
    if not path:
        return Parts()
    module, _, name = path.partition(":")
    factory = getattr(importlib.import_module(module), name)
    parts = factory()
    if not isinstance(parts, Parts):
        raise TypeError(f"{path} returned {type(parts).__name__}, not voxclone.runtime.Parts")
    return parts


class ReplicaMetrics:
    """What the API replica counts about the synthesis replicas (on its /metrics)."""

    def __init__(self) -> None:
        self.spoken = Counter(
            "voxclone_replica_pieces", "Pieces spoken, by synthesis replica", ["replica"], registry=None
        )
        self.retried = Counter(
            "voxclone_replica_retries", "Pieces spoken again because their synthesis replica stopped", registry=None
        )

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self.spoken)
        registry.register(self.retried)


@dataclass(frozen=True)
class Spoken:
    """A piece spoken by a synthesis replica, and which replica spoke it."""

    chunks: list[AudioChunk]
    replica: str


class ReplicaEngine(RemoteEngine):
    """An engine as the API replica sees it: its metadata from the local engine (built, never loaded),
    its speech from the synthesis deployment."""

    def __init__(self, local: Engine, synthesis: DeploymentHandle[Any], metrics: ReplicaMetrics) -> None:
        super().__init__()
        self.name = local.name  # type: ignore[misc]
        self.capabilities = local.capabilities  # type: ignore[misc]
        self._local = local
        self._synthesis = synthesis
        self._metrics = metrics

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        raise TypeError("a ReplicaEngine wraps an engine built by the registry")

    def availability(self) -> Any:
        return self._local.availability()

    @property
    def loaded(self) -> bool:
        return True  # Serve routes to synthesis replicas only once they have loaded

    def stock_voices(self) -> list[StockVoice]:
        return self._local.stock_voices()

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        self._local.check_voice(params, files_dir)

    def voice_from_file(self, path: Path) -> dict[str, Any] | None:
        return self._local.voice_from_file(path)

    async def astream(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> AsyncIterator[AudioChunk]:
        spoken = await self._speak(text, voice, options)
        self._metrics.spoken.labels(spoken.replica).inc()
        for chunk in spoken.chunks:
            yield chunk

    async def _speak(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Spoken:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                response = self._synthesis.speak.remote(
                    self.name, text, voice.id, voice.version, dict(voice.params), options
                )
                spoken: Spoken = await response
                return spoken
            except RayTaskError as e:  # the engine's own error, raised in the replica
                cause = e.cause
                raise (
                    cause if isinstance(cause, VoxcloneError) else EngineUnavailable(f"{self.name} failed: {cause}")
                ) from e
            except BackPressureError as e:
                raise Busy("every synthesis replica is busy; retry shortly", retry_after=1.0) from e
            except _REPLICA_GONE as e:
                if attempt == _ATTEMPTS:
                    raise EngineUnavailable(
                        f"the {self.name} synthesis replicas stopped {_ATTEMPTS} times; retry shortly"
                    ) from e
                log.warning("a synthesis replica stopped (%s); speaking the piece on another", type(e).__name__)
                self._metrics.retried.inc()
                await asyncio.sleep(_RETRY_PAUSE_S * attempt)
        raise AssertionError("unreachable")

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Any:
        raise TypeError("a ReplicaEngine speaks on the event loop (astream)")


def replica_engines(engines: Engines, synthesis: DeploymentHandle[Any], metrics: ReplicaMetrics) -> Engines:
    """The registry's engines, each speaking through the synthesis deployment."""
    built: dict[str, Engine] = {name: ReplicaEngine(engine, synthesis, metrics) for name, engine in engines.items()}
    missing = {name: engines.availability(name) for name in engines.all_names() if name not in engines}
    return Engines(built, missing)


class Synthesis:
    """Engines of one replica; speaks pieces for the API replicas."""

    def __init__(self, overrides: dict[str, Any], parts: str | None) -> None:
        self.runtime = Runtime(_settings(overrides, run_enrolments=False), _parts(parts))
        self.runtime.load()
        self.replica = serve.get_replica_context().replica_id.unique_id

    async def speak(
        self, engine: str, text: str, voice_id: str, version: int, params: dict[str, Any], options: SpeakOptions
    ) -> Spoken:
        runtime = self.runtime

        def make() -> list[AudioChunk]:
            # This machine's copy of the voice's files (written out once per version from the database).
            files = runtime.library.blobs.local_dir(voice_id, version)
            spec = VoiceSpec(voice_id, version, params, files)
            return list(runtime.engines.usable(engine).synthesize(text, spec, options))

        # Identical pieces asked for at once (by several API replicas) are made once.
        key = f"{engine}|{voice_id}:{version}|{options.speed}|{options.seed}|{text}"
        return Spoken(await runtime.workers.run(make, key=key), self.replica)

    def __del__(self) -> None:
        self.runtime.close()


class Enrolment:
    """Claims enrolment jobs from the library's database and runs them, within the CPUs Ray gave it: a
    deep fit runs with that many threads unless `deep_threads` says otherwise."""

    def __init__(self, overrides: dict[str, Any], parts: str | None, cpus: float = 0.0) -> None:
        settings = _settings(overrides, run_enrolments=True)
        if cpus > 0 and settings.deep_threads == 0:
            settings = settings.model_copy(update={"deep_threads": max(1, math.ceil(cpus))})
        lower_priority(psutil.Process())  # its threads, and the fits it starts, yield to synthesis
        self.runtime = Runtime(settings, _parts(parts))
        self.runtime.start(None)  # engine calls run on the job's own thread: nothing else speaks here

    def check_health(self) -> None:
        if not self.runtime.enroller.running:
            raise RuntimeError("the enrolment worker stopped")

    def __del__(self) -> None:
        self.runtime.close()


class Api:
    """The HTTP API and web page, speaking through the synthesis deployment."""

    def __init__(
        self,
        overrides: dict[str, Any],
        parts: str | None,
        synthesis: DeploymentHandle[Any],
        enrolment: DeploymentHandle[Any],
        capacity: int,
    ) -> None:
        # Requests are counted for the rate limit in the database, across every API replica. The pieces
        # admitted at once are what the synthesis replicas can take, not what this replica's threads can.
        # `enrolment` is bound here only so that it is deployed with the application: jobs reach it
        # through the database.
        settings = _settings(overrides, run_enrolments=False, preload=False)
        if settings.rate_limit_storage == "auto":  # set to memory, each API replica counts on its own
            settings = settings.model_copy(update={"rate_limit_storage": "database"})
        settings = settings.model_copy(update={"queue_size": max(settings.queue_size, capacity)})
        own = _parts(parts)
        metrics = ReplicaMetrics()
        engines = replica_engines(own.engines or build_engines(settings), synthesis, metrics)
        self.runtime = Runtime(settings, Parts(engines=engines, cloners=own.cloners, listeners=own.listeners))
        metrics.register(self.runtime.metrics.registry)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.runtime.settings, runtime=self.runtime)


def build(overrides: Mapping[str, Any], options: Options) -> serve.Application:
    """The application: API replicas in front of synthesis and enrolment replicas."""
    overrides = dict(overrides)
    settings = load_settings(**overrides)
    per_replica = settings.queue_size + max(1, settings.synthesis_workers or 2)
    scaling: dict[str, Any] = {"num_replicas": options.replicas}
    if options.max_replicas and options.max_replicas > options.replicas:
        scaling = {
            "autoscaling_config": {
                "min_replicas": options.replicas,
                "max_replicas": options.max_replicas,
                # a replica is added when more pieces wait than its threads can speak at once
                "target_ongoing_requests": max(1, settings.synthesis_workers or 2),
            }
        }
    synthesis = (
        serve.deployment(name="synthesis", health_check_period_s=5)(Synthesis)
        .options(
            max_ongoing_requests=per_replica,
            graceful_shutdown_timeout_s=_SYNTHESIS_DRAIN_S,
            ray_actor_options={
                "num_cpus": options.cpus_per_replica,
                "num_gpus": options.gpus_per_replica,
                "runtime_env": {"env_vars": {"OMP_NUM_THREADS": str(_engine_threads(settings))}},
            },
            **scaling,
        )
        .bind(overrides, options.parts)
    )
    enrolment = (
        serve.deployment(name="enrolment", health_check_period_s=5)(Enrolment)
        .options(
            num_replicas=options.enrolment_replicas,
            ray_actor_options={"num_cpus": options.cpus_per_enrolment_replica},
        )
        .bind(overrides, options.parts, options.cpus_per_enrolment_replica)
    )
    capacity = per_replica * (options.max_replicas or options.replicas)
    ingress = serve.ingress()(Api)  # the app is built in each replica by Api.__serve_build_asgi_app__
    api = serve.deployment(name="api", health_check_period_s=5)(ingress).options(
        num_replicas=options.api_replicas,
        ray_actor_options={"num_cpus": 0},
        max_ongoing_requests=1000,
        graceful_shutdown_timeout_s=_API_DRAIN_S,
    )
    return api.bind(overrides, options.parts, synthesis, enrolment, capacity)


def _engine_threads(settings: Settings) -> int:
    """The threads a synthesis replica's BLAS gets. Ray sets a replica's OMP_NUM_THREADS to its CPU share
    (1 by default), which numpy's and scipy's BLAS keep for life: a piece of Kokoro was then 10-15 % slower
    on 2 cores. They get the engines' threads (VOXCLONE_ONNX_THREADS, else this machine's cores: give
    nodes with other core counts the setting)."""
    return settings.onnx_threads or os.cpu_count() or 1


def app(args: dict[str, str]) -> serve.Application:
    """`serve run voxclone.deploy:app replicas=4 ...` and RayService's import_path: an application builder."""
    known = Options.__dataclass_fields__
    unknown = set(args) - set(known)
    if unknown:
        raise ValueError(f"unknown arguments {sorted(unknown)}; known: {sorted(known)}")
    typed = {k: known[k].type for k in args}
    values: dict[str, Any] = {}
    for key, raw in args.items():
        kind = str(typed[key])
        values[key] = raw if "str" in kind else float(raw) if "float" in kind else int(raw)
    return build({}, Options(**values))


def run(overrides: Mapping[str, Any], options: Options, host: str, port: int, *, dashboard: bool = False) -> None:
    """Start or join a Ray cluster (RAY_ADDRESS), deploy, and serve until interrupted. Blocking.

    A cluster started here runs without Ray's dashboard unless `dashboard`: on a 2-core machine its
    processes alone delayed the first audio by about 12 ms (README "Scaling out"). A cluster joined has
    its own."""
    import ray

    joined = bool(os.environ.get("RAY_ADDRESS"))
    if joined:
        if dashboard:
            log.warning(
                "the dashboard of a cluster joined (RAY_ADDRESS) is the cluster's own: --ray-dashboard is ignored"
            )
        ray.init(ignore_reinit_error=True, runtime_env=_forwarded_env())
    else:
        start_local_cluster(num_cpus=_local_cpus(options), include_dashboard=dashboard)
    # Serve's own logs, the proxy's and the replicas' request lines included, at the level uvicorn's would be.
    logs = LoggingConfig(log_level=load_settings(**overrides).log_level.upper())
    serve.start(http_options={"host": host, "port": port}, logging_config=logs)
    if not joined:
        quiet_own_processes()
    try:
        serve.run(build(overrides, options), name="voxclone", route_prefix="/", blocking=True, logging_config=logs)
    except KeyboardInterrupt:  # Ctrl-C: a normal stop, as it is for one process (exit status 0)
        log.info("stopping: Ctrl-C")
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]


def start_local_cluster(**init: Any) -> None:
    """Start a Ray cluster on this machine (ray.init's arguments) with QUIET_CLUSTER's settings where the
    environment has none. Ray's processes read them from the environment they inherit, this one's too
    (it starts Serve), so they stay set here."""
    import ray

    for key, value in QUIET_CLUSTER.items():
        os.environ.setdefault(key, value)
    ray.init(ignore_reinit_error=True, **init)


def quiet_own_processes() -> None:
    """Lower the Ray processes of the cluster this process started that no request waits on to
    BACKGROUND_NICENESS: the GCS, dashboard and monitors (its children from Ray's package) and Serve's
    controller. Not the raylet: the replicas are its children and take its priority."""
    import ray

    package = os.path.dirname(ray.__file__)
    for child in psutil.Process().children():
        try:
            if child.name() == "raylet":
                background = [p for p in child.children() if _title(p).startswith(_CONTROLLER)]
            elif any(arg.startswith(package) for arg in child.cmdline()):
                background = [child, *child.children(recursive=True)]
            else:
                continue  # not Ray's
            for process in background:
                lower_priority(process)
        except psutil.Error:  # ended meanwhile
            continue


def _title(process: psutil.Process) -> str:
    """The name Ray gives a worker's process ("ray::ServeController"), as ps shows it."""
    return next(iter(process.cmdline()), "")


def lower_priority(process: psutil.Process) -> None:
    """Every thread of `process` at BACKGROUND_NICENESS or lower: Linux keeps a priority per thread, so
    setting the process's (its main thread's) would leave the threads doing its work where they were."""
    for thread in process.threads():
        try:
            now = os.getpriority(os.PRIO_PROCESS, thread.id)
            os.setpriority(os.PRIO_PROCESS, thread.id, max(now, BACKGROUND_NICENESS))
        except OSError:  # ended meanwhile
            continue


def _local_cpus(options: Options) -> int:
    """The CPUs a Ray cluster started on this machine offers: its cores, or what the layout asks for at
    its least where that is more (two synthesis replicas and an enrolment replica on a 2-core machine),
    so every replica starts and they share the cores, as one process's threads would."""
    cores = os.cpu_count() or 1
    asked = math.ceil(options.least_cpus())
    if asked > cores:
        log.info("the replicas ask Ray for %d CPUs and this machine has %d cores: they share them", asked, cores)
    return max(cores, asked)


def _forwarded_env() -> dict[str, Any]:
    """Replicas on a cluster this command joins get its VOXCLONE_* settings (a cluster it starts
    inherits them). They travel in the job's runtime environment, which the cluster's dashboard shows:
    on a shared cluster, give replicas their secrets by the cluster's own means instead (README)."""
    return {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("VOXCLONE_")}}
