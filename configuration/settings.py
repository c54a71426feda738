"""All configuration comes from the environment, read in one place (no hard-coded bucket or DSN)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from video_analysis.runtime.home import StateHome


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


# Variables read by the functions beside Settings (what docs/configuration.md says of them).
READ_THROUGH_ENV = {
    "REELGRAPH_HOME": ("<checkout>/.reelgraph", "the state folder: embedded database, inbox, cache, local Dagster "
                       "instance (an installed package: ~/.local/share/reelgraph)"),
    "REELGRAPH_CAMERAS": ("$REELGRAPH_HOME/cameras.yaml", "the cameras `reelgraph record` pulls"),
}


def state_home() -> StateHome:
    """The state folder: $REELGRAPH_HOME, else the checkout's `.reelgraph` (or, installed, the user's)."""
    return StateHome.at(_env("REELGRAPH_HOME"))


def cameras_file(home: StateHome) -> Path:
    """The cameras `reelgraph record` pulls: $REELGRAPH_CAMERAS, else `cameras.yaml` in the state folder."""
    from video_analysis.recording.cameras import cameras_path

    return cameras_path(home.root, _env("REELGRAPH_CAMERAS"))


def env(name: str, default: str | None = None) -> str | None:
    """One variable of another library's (YOLO_OFFLINE, HF_HUB_OFFLINE), stripped; None or ``default`` when
    unset or blank."""
    return _env(name, default)


def environment():
    """The environment itself, for the cameras file's ``${NAME}`` credentials (never copied into a setting)."""
    return os.environ


def default_process_env(name: str, value: str) -> str:
    """Set a third-party library's variable for this process unless the user set it (prepare_process, the
    local Dagster instance); the value in force."""
    return os.environ.setdefault(name, value)


def max_video_pixels(default: int) -> int:
    """REELGRAPH_MAX_VIDEO_PIXELS: frames larger than this are refused (unset: 33177600, 8K)."""
    value = _env("REELGRAPH_MAX_VIDEO_PIXELS", str(default))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"REELGRAPH_MAX_VIDEO_PIXELS must be a whole number of pixels >= 1, not {value!r}")
    return int(value)



def _answer_writer(value: str | None) -> str:
    value = (value or "auto").strip().lower()
    if value not in ("auto", "off"):
        raise ValueError(f"REELGRAPH_ANSWER_WRITER must be 'auto' or 'off', not {value!r}")
    return value


def _tiles(value: str | None) -> str:
    from video_analysis.vision.tiling import parse_tiles

    try:
        parse_tiles(value)
    except ValueError as exc:
        raise ValueError(f"REELGRAPH_DETECTOR_TILES: {exc}") from exc
    return (value or "off").strip().lower()


def sensor_interval_seconds() -> int:
    """REELGRAPH_SENSOR_INTERVAL_SECONDS alone, for the sensors' definitions."""
    return _positive_int("REELGRAPH_SENSOR_INTERVAL_SECONDS", 15)


def _positive_int(name: str, default: int) -> int:
    value = (_env(name, str(default)) or str(default)).strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of seconds >= 1, not {value!r}")
    return int(value)


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (_env(name, default) or default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    home: StateHome = field(default_factory=state_home)
    # Where model weights, converted graphs and exports are cached; unset means `models/` in the state folder.
    # Several state folders (or machines, on a shared disk) can share one: every write is whole or absent.
    model_cache: str | None = field(default_factory=lambda: _env("REELGRAPH_MODEL_CACHE"))
    # The embedded server's cache (PostgreSQL units, e.g. 2GB), kept across restarts by autoprewarm; unset means
    # an eighth of the memory, 128 MB-4 GB.
    postgres_shared_buffers: str | None = field(default_factory=lambda: _env("REELGRAPH_POSTGRES_SHARED_BUFFERS"))
    # PostgreSQL URL; unset means "start the embedded server under the state folder".
    database_url: str | None = field(default_factory=lambda: _env("REELGRAPH_DATABASE_URL"))
    # S3 bucket of raw footage; unset means the local inbox folder.
    s3_bucket: str | None = field(default_factory=lambda: _env("REELGRAPH_S3_BUCKET"))

    # Only keys under this prefix are watched (and the recorder writes under its `cameras/`).
    s3_prefix: str = field(default_factory=lambda: _env("REELGRAPH_S3_PREFIX", "") or "")

    # Another S3 endpoint than AWS's: MinIO, LocalStack, moto.
    s3_endpoint_url: str | None = field(
        default_factory=lambda: _env("REELGRAPH_S3_ENDPOINT_URL", _env("AWS_ENDPOINT_URL"))
    )

    # The bucket's AWS region (credentials come from boto3's usual chain).
    aws_region: str | None = field(default_factory=lambda: _env("AWS_REGION", _env("AWS_DEFAULT_REGION")))

    # The local inbox folder when no bucket is set; unset means `inbox/` in the state folder.
    inbox: str | None = field(default_factory=lambda: _env("REELGRAPH_INBOX"))
    # Upload sensor: objects modified more recently than this are still being written.
    settle_seconds: float = field(default_factory=lambda: float(_env("REELGRAPH_SETTLE_SECONDS", "5")))
    # How often the upload, camera-silence and failure-alert sensors run, in seconds (read when the code
    # location loads). Dagster's daemon looks at its sensors about every 5 s, so less acts as 5.
    sensor_interval_seconds: int = field(default_factory=lambda: sensor_interval_seconds())
    # Upload sensor: at most this many objects are listed per tick (the rest on later ticks).
    objects_per_tick: int = field(default_factory=lambda: int(_env("REELGRAPH_OBJECTS_PER_TICK", "5000")))

    # The local cold tier: retention moves footage older than `cold_after_days` (zones file) here, under the same
    # key (another volume, a network mount). Unset means `cold/` in the state folder.
    cold_dir: str | None = field(default_factory=lambda: _env("REELGRAPH_COLD_DIR"))
    # The free space kept on the volumes footage is written to (the inbox, the recorder's spool, the state
    # folder): bytes (20G, 512M) or a share of the volume (5%). Below it retention removes the oldest footage
    # without incidents, then recording pauses and pipeline steps refuse to start, instead of failing half-way.
    disk_floor: str = field(default_factory=lambda: _env("REELGRAPH_DISK_FLOOR", "1%") or "0")

    # S3 downloads kept on local disk, least recently used evicted first (files in use never are).
    cache_max_gb: float = field(default_factory=lambda: float(_env("REELGRAPH_CACHE_MAX_GB", "20")))

    # Backfills: videos per run of the video stages (each model loads once per run).
    videos_per_run: int = field(default_factory=lambda: int(_env("REELGRAPH_VIDEOS_PER_RUN", "10")))

    # Tracks: the classes that become tracks (comma list; "*" for every class), and the evidence a track
    # needs (sampled frames seen, mean confidence). Per camera: `track_classes` in the zones file.
    track_classes: str | None = field(default_factory=lambda: _env("REELGRAPH_TRACK_CLASSES"))
    track_min_frames: int = field(default_factory=lambda: int(_env("REELGRAPH_TRACK_MIN_FRAMES", "2")))
    track_min_confidence: float = field(
        default_factory=lambda: float(_env("REELGRAPH_TRACK_MIN_CONFIDENCE", "0.45")))

    # Search: a track whose description is less similar than this (cosine, text vectors) to the query is no
    # match; calibrated on the sample clips (README, Search).
    search_min_similarity: float = field(
        default_factory=lambda: float(_env("REELGRAPH_SEARCH_MIN_SIMILARITY", "0.3")))
    # Search over video summaries: the same for a summary's vector (long texts sit closer to any question).
    search_min_summary_similarity: float = field(
        default_factory=lambda: float(_env("REELGRAPH_SEARCH_MIN_SUMMARY_SIMILARITY", "0.3")))
    # Search over incidents: how close a query must be to what an incident type means ("was anyone hanging
    # around?" to loitering: 0.41; "car", the nearest of the absent words, 0.36; benchmarks/README.md).
    search_min_incident_similarity: float = field(
        default_factory=lambda: float(_env("REELGRAPH_SEARCH_MIN_INCIDENT_SIMILARITY", "0.4")))
    # Who writes answers to questions: "auto" is the profile's vision-language model (the summarizer) when its
    # weights are present, "off" the template alone. Either way every sentence cites a retrieved row.
    answer_writer: str = field(default_factory=lambda: _answer_writer(_env("REELGRAPH_ANSWER_WRITER", "auto")))
    # torch threads in `reelgraph serve`. A query's embedding is one short sentence; with more threads, torch's
    # idle threads spin on the cores PostgreSQL then needs for the same request (p95 131 -> 69 ms at 1M
    # tracks on 2 cores, benchmarks/README.md). Raise it for an answer writer generating on the CPU.
    service_torch_threads: int = field(default_factory=lambda: int(_env("REELGRAPH_SERVICE_TORCH_THREADS", "1")))
    # How the text model runs on the CPU, in the `embeddings` and `summaries` steps and for `reelgraph serve`'s
    # queries: "onnx" (ONNX Runtime, from an export made once into the model cache and checked against torch;
    # it loads in under a second where torch and sentence-transformers take 4-9 s, and embeds a query in
    # ~10 ms against ~38 ms) or "torch". Where no export can be made (another pooling, no onnxruntime), torch
    # runs it. REELGRAPH_QUERY_EMBEDDER is its former name, still read.
    text_runtime: str = field(default_factory=lambda: _choice(
        "REELGRAPH_TEXT_RUNTIME" if _env("REELGRAPH_TEXT_RUNTIME") else "REELGRAPH_QUERY_EMBEDDER", "onnx",
        ("onnx", "torch")))
    # `reelgraph serve` access: tokens (comma- or space-separated) or a file of them (one a line, # comments).
    # A bind beyond loopback refuses to start without one; with any, every API request needs one.
    service_tokens: str | None = field(default_factory=lambda: _env("REELGRAPH_SERVICE_TOKENS"))
    service_tokens_file: str | None = field(default_factory=lambda: _env("REELGRAPH_SERVICE_TOKENS_FILE"))
    # Host names the service answers to beyond the bound address (a reverse proxy's name, a DNS name;
    # "*.example.com" patterns). Other Host headers get 400, which stops DNS rebinding.
    service_hosts: str | None = field(default_factory=lambda: _env("REELGRAPH_SERVICE_HOSTS"))
    # Reverse proxies whose X-Forwarded-For/-Proto `reelgraph serve` believes (comma list of addresses, "*").
    service_forwarded_allow_ips: str = field(
        default_factory=lambda: _env("REELGRAPH_SERVICE_FORWARDED_ALLOW_IPS", "127.0.0.1") or "127.0.0.1")
    # Bounds on one request's database work: a statement (a search excluding a common word scans) and a lock
    # wait (a migration or index build holding a table). Past them the request gets 503, not a stuck worker.
    service_statement_timeout_ms: int = field(
        default_factory=lambda: int(_env("REELGRAPH_SERVICE_STATEMENT_TIMEOUT_MS", "5000")))
    service_lock_timeout_ms: int = field(
        default_factory=lambda: int(_env("REELGRAPH_SERVICE_LOCK_TIMEOUT_MS", "2000")))
    # Answers and searches served at once; more get 429 at once rather than queueing behind them, so
    # health checks, thumbnails and the page keep answering.
    service_max_answers: int = field(default_factory=lambda: int(_env("REELGRAPH_SERVICE_MAX_ANSWERS", "2")))
    service_max_searches: int = field(default_factory=lambda: int(_env("REELGRAPH_SERVICE_MAX_SEARCHES", "8")))
    # The Dagster webserver, for links from search results to a partition's page.
    dagster_url: str = field(default_factory=lambda: _env("REELGRAPH_DAGSTER_URL", "http://127.0.0.1:3000") or "")

    # The device every model that can use a GPU is built on: auto (CUDA when torch sees it), cpu, cuda or cuda:N.
    device: str = field(default_factory=lambda: _env("REELGRAPH_DEVICE", "auto") or "auto")

    # Live cameras: a stream lost for this long makes its camera silent (one alert per outage). A camera that
    # published nothing for two segment lengths is silent too.
    camera_lost_seconds: float = field(default_factory=lambda: float(_env("REELGRAPH_CAMERA_LOST_SECONDS", "20")))
    # A stopping recorder waits this long for the uploads in flight before leaving them in the spool for its next
    # start (set the platform's grace period above it: Kubernetes' terminationGracePeriodSeconds, docker stop -t).
    recorder_stop_seconds: int = field(default_factory=lambda: _positive_int("REELGRAPH_RECORDER_STOP_SECONDS", 120))

    # Detection on tiles (`COLSxROWS`, or off): small, far objects in frames much larger than the detector's
    # input, at the cost of a detector call per tile. Per camera: `detector_tiles` in the zones file.
    detector_tiles: str = field(default_factory=lambda: _tiles(_env("REELGRAPH_DETECTOR_TILES", "off")))

    # Zones per camera (YAML); unset means <home>/zones.yaml when it exists.
    zones_file: str | None = field(default_factory=lambda: _env("REELGRAPH_ZONES"))

    # Models: the profile (full, offline or auto: see Models), your own manifest instead of
    # models/manifest.yaml, and a folder holding model files by name (picodet_s_416_coco.onnx,
    # yolox_nano.onnx), read instead of downloading them, for air-gapped sites.
    model_profile: str | None = field(default_factory=lambda: _env("REELGRAPH_MODEL_PROFILE", "auto"))
    models_manifest: str | None = field(default_factory=lambda: _env("REELGRAPH_MODELS_MANIFEST"))
    model_dir: str | None = field(default_factory=lambda: _env("REELGRAPH_MODEL_DIR"))

    # How steps run: multiprocess (one machine), ecs or k8s (each step its own task or job; see Deployment),
    # and what a GPU step asks for there: GPUs, the ECS capacity provider, memory (MiB) and CPU units.
    executor: str = field(default_factory=lambda: _choice("REELGRAPH_EXECUTOR", "multiprocess",
                                                          ("multiprocess", "ecs", "k8s")))
    gpus_per_step: str = field(default_factory=lambda: _env("REELGRAPH_GPUS_PER_STEP", "1"))
    ecs_gpu_capacity_provider: str = field(
        default_factory=lambda: _env("REELGRAPH_ECS_GPU_CAPACITY_PROVIDER", "reelgraph-gpu"))
    ecs_gpu_memory_mib: str = field(default_factory=lambda: _env("REELGRAPH_ECS_GPU_MEMORY_MIB", "15360"))
    ecs_gpu_cpu_units: str = field(default_factory=lambda: _env("REELGRAPH_ECS_GPU_CPU_UNITS", "4096"))

    # Failed runs and silent cameras are posted here as JSON (never logged: the URL carries a token).
    alert_webhook: str | None = field(default_factory=lambda: _env("REELGRAPH_ALERT_WEBHOOK"))
    # The sample clips `reelgraph dev` processes first; unset means ../shared/data/videos beside the checkout.
    sample_videos: str | None = field(default_factory=lambda: _env("REELGRAPH_SAMPLE_VIDEOS"))

    # The site's time zone (an IANA name, e.g. Europe/Paris): where "today" and "between 14:00 and 15:00" in a
    # counting question are read.
    site_timezone: str = field(default_factory=lambda: _env("REELGRAPH_SITE_TIMEZONE", "UTC"))

    # `reelgraph search` asks a running `reelgraph serve` here first, sending this token (one of the service's
    # REELGRAPH_SERVICE_TOKENS); without an answer it searches in its own process.
    service_url: str = field(default_factory=lambda: _env("REELGRAPH_SERVICE_URL", "http://127.0.0.1:8000"))
    service_token: str | None = field(default_factory=lambda: _env("REELGRAPH_SERVICE_TOKEN"))

    @property
    def cold_path(self) -> Path:
        return Path(self.cold_dir).expanduser() if self.cold_dir else self.home.root / "cold"

    @property
    def floor(self):
        from video_analysis.runtime.disk import DiskFloor

        return DiskFloor.parse(self.disk_floor)

    def model_cache_dir(self) -> Path:
        """The model cache: $REELGRAPH_MODEL_CACHE, else `models/` in the state folder (created)."""
        return Path(self.model_cache).expanduser() if self.model_cache else self.home.ensure().root / "models"

    @classmethod
    def from_env(cls) -> Settings:
        return cls()

    def track_policy(self):
        from video_analysis.vision.evidence import TrackPolicy, parse_classes

        return TrackPolicy(parse_classes(self.track_classes), self.track_min_frames, self.track_min_confidence)

    @property
    def zones_path(self) -> Path | None:
        """The zones file in force: $REELGRAPH_ZONES, else <home>/zones.yaml when it exists."""
        if self.zones_file:
            return Path(self.zones_file)
        default = self.home.root / "zones.yaml"
        return default if default.exists() else None
