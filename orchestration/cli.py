"""The ``reelgraph`` command: set up, check, process and inspect without opening the UI."""

import argparse
import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("reelgraph")

CHECKOUT = Path(__file__).resolve().parents[1]
SAMPLE_CLIP = "one-by-one-person-detection.mp4"


def sample_videos_dir() -> Path | None:
    from video_analysis.runtime.settings import Settings

    configured = Settings.from_env().sample_videos
    candidates = [Path(configured)] if configured else [CHECKOUT.parent / "shared" / "data" / "videos"]
    return next((c for c in candidates if c.is_dir()), None)


# -- doctor ----------------------------------------------------------------------------------------
def _check_database(settings) -> tuple[bool, str]:
    from video_analysis.store import db, schema, vector_index

    try:
        dsn = db.resolve_dsn(settings.database_url, settings.home.pgdata)
        db.prepare(dsn)
        with db.connect(dsn) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            vector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            current = schema.current_version(conn)
            outdated = vector_index.outdated_indexes(conn)
    except Exception as exc:
        return False, f"database: {exc}"
    where = "external" if settings.database_url else f"embedded, {settings.home.pgdata}"
    line = (f"database: PostgreSQL {version} ({where}), pgvector {vector[0] if vector else 'MISSING'}, "
            f"schema v{current}")
    if outdated:  # still usable: searches work, with a lower recall
        line += (f"; {len(outdated)} vector index(es) built with older settings ({', '.join(outdated)}): "
                 "run `reelgraph index rebuild` for full recall")
    return True, line


def _check_object_store() -> tuple[bool, str]:
    from resources import ObjectStoreResource

    try:
        store = ObjectStoreResource().store()
        page = store.list_page(None, 100)
    except Exception as exc:
        return False, f"object store: {exc}"
    more = "+" if page.next_start_after else ""
    return True, f"object store: {store.describe()} ({len(page.objects)}{more} objects)"


def _check_models() -> tuple[bool, str]:
    """What each task of the manifest resolves to; only a missing detector is a hard failure."""
    from models import ModelUnavailableError
    from resources import ModelRegistryResource

    models = ModelRegistryResource()
    tasks = sorted({task for tasks in models.registry().spec["profiles"].values() for task in tasks or {}})
    lines, ok = [], True
    for task in tasks:
        try:
            lines.append(models.resolve(task, allow_download=False).describe())
        except ModelUnavailableError as exc:
            ok = ok and task != "detector"
            lines.append(f"{task}: absent ({exc})")
    return ok, "models: " + "; ".join(lines)


def _check_gpu() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return True, "gpu: torch not installed"
    if torch.cuda.is_available():
        return True, f"gpu: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    return True, f"gpu: none, stages run on the CPU (torch {torch.__version__})"


def _check_runs(settings) -> tuple[bool, str]:
    """Runs the instance believes in progress whose worker is gone: they hold pool slots until failed."""
    from dagster import DagsterInstance

    from orchestration.instance import ensure_local_instance
    from orchestration.recovery import find_dead_runs

    ensure_local_instance(settings.home)
    with DagsterInstance.get() as instance:
        dead = find_dead_runs(instance)
    if not dead:
        return True, "runs: none stuck"
    listed = ", ".join(f"{d.run_id[:8]} ({d.partition or d.job}, worker pid {d.pid} gone)" for d in dead)
    return False, (f"runs: {len(dead)} stuck, holding pool slots: {listed}; the daemon fails them within a "
                   "minute, and `reelgraph process`/`reelgraph dev` do when they start")


def _say_recovered(instance) -> None:
    from orchestration.recovery import recover
    from resources import PostgresResource

    for dead in recover(instance, PostgresResource()):
        print(f"recovered: run {dead.run_id[:8]} ({dead.partition or dead.job}) lost its worker (pid {dead.pid}); "
              "marked failed, pool slots freed")


def cmd_doctor(args) -> int:
    from video_analysis.runtime.settings import Settings

    settings = Settings.from_env()
    settings.home.ensure()
    failed = False
    for check in (lambda: _check_database(settings), _check_object_store, _check_models, _check_gpu,
                  lambda: _check_runs(settings)):
        ok, line = check()
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
    return 1 if failed else 0


# -- status ----------------------------------------------------------------------------------------
def _when_text(moment) -> str:
    from datetime import timezone

    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def cmd_camera_status(args) -> int:
    from resources import PostgresResource
    from video_analysis.store import cameras

    with PostgresResource().session() as conn:
        found = cameras.camera_health(conn)
    if args.json:
        print(json.dumps([c.as_dict() for c in found], indent=2))
        return 0
    if not found:
        print("no cameras recorded yet (list them in cameras.yaml and run `reelgraph record`)")
        return 0
    header = ["camera", "state", "last packet (UTC)", "last segment (UTC)", "gaps 24 h", "note"]
    rows = []
    for c in found:
        gaps = ", ".join(f"{_when_text(g.started_at)[11:]}-{_when_text(g.ended_at)[11:] if g.ended_at else 'now'}"
                         for g in c.gaps[-3:])
        note = c.silence or c.last_error or ""
        rows.append([c.name, c.state, _when_text(c.last_packet_at), _when_text(c.last_segment_at),
                     f"{len(c.gaps)}" + (f" ({gaps})" if gaps else ""), note[:90]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_storage_status(args) -> int:
    """Footage bytes per camera, day and tier; free space of each tier and the days left at the current rate."""
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.disk import describe_bytes
    from video_analysis.runtime.settings import Settings
    from video_analysis.store import storage

    settings = Settings.from_env()
    with PostgresResource().session() as conn:
        found = storage.report(conn, ObjectStoreResource().store(), settings.floor, days=args.days)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"footage arriving: {describe_bytes(found['bytes_per_day'])} a day (mean of the last "
          f"{storage.RATE_DAYS} days)")
    for volume in found["volumes"]:
        if volume["free"] is None:
            print(f"{volume['tier']} tier: an S3 bucket (no size limit to watch)")
            continue
        days = volume["days_left"]
        left = ("over ten years left at this rate" if days is not None and days > 3650
                else f"{days:.1f} days left at this rate" if days is not None
                else "no rate yet" if volume["tier"] == "hot" else "")
        print(f"{volume['tier']} tier: {describe_bytes(volume['free'])} free of {describe_bytes(volume['total'])}, "
              f"floor {describe_bytes(volume['floor'])}" + (f"; {left}" if left else ""))
    if not found["days"]:
        print(f"no footage in the last {args.days} days")
        return 0
    header = ["camera", "day (UTC)", "tier", "videos", "size"]
    rows = [[d["camera"], d["day"], d["tier"], str(d["videos"]), describe_bytes(d["bytes"])] for d in found["days"]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_status(args) -> int:
    if args.cameras:
        return cmd_camera_status(args)
    if args.storage:
        return cmd_storage_status(args)
    from assets import VIDEO_STAGES
    from resources import PostgresResource
    from video_analysis.store import catalog

    stages = [a.key.to_user_string() for a in VIDEO_STAGES]
    with PostgresResource().session() as conn:
        videos = catalog.list_status(conn, limit=args.limit)
    if args.json:
        print(json.dumps([{**v.__dict__, "recorded_at": v.recorded_at.isoformat() if v.recorded_at else None}
                          for v in videos], indent=2, default=str))
        return 0
    if not videos:
        print("no videos registered yet")
        return 0
    header = ["partition", "frames", "video", *stages, "error or note"]
    rows = []
    for v in videos:
        states = [v.stages.get(s, {}).get("status", "-") for s in stages]
        superseded = f"superseded by {v.superseded_by}" if v.superseded_by else None
        errors = [v.error] + [st.get("error") for st in v.stages.values()] + ["; ".join(v.notes or []), superseded]
        error = next((e for e in errors if e), "")
        frames = v.decoded_frames if v.decoded_frames is not None else v.frame_count
        rows.append([v.partition_key, str(frames if frames is not None else "-"), v.status, *states, error[:80]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


# -- record ----------------------------------------------------------------------------------------
def cmd_record(args) -> int:
    """Record every camera of the cameras file until SIGTERM or SIGINT; the open segments are published."""
    import signal
    import threading

    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.recording.cameras import CamerasFileError, cameras_path, load_cameras
    from video_analysis.recording.health import HealthBoard
    from video_analysis.recording.recorder import Recorder, RecorderBusy, RoomKeeper
    from video_analysis.runtime.settings import Settings
    from video_analysis.store import db

    settings = Settings.from_env()
    home = settings.home.ensure()
    path = Path(args.cameras) if args.cameras else cameras_path(home.root)
    try:
        cameras = load_cameras(path)
    except CamerasFileError as exc:
        print(f"reelgraph record: {exc}", file=sys.stderr)
        return 2
    store = ObjectStoreResource().store()
    for camera in cameras:
        print(f"camera {camera.name}: {camera.shown_url} ({camera.kind}, {camera.segment_seconds} s segments)")
    if args.check:
        return 0
    database = PostgresResource()
    board = HealthBoard(lambda: db.connect(database.dsn()), cameras)
    stop = threading.Event()

    def stopping(signum, _frame):
        if not stop.is_set():
            log.warning("%s: closing the open segments, then stopping", signal.Signals(signum).name)
        stop.set()

    # SIGHUP too: the terminal of `reelgraph dev` or an ssh session closing must publish, not kill
    for stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(stop_signal, stopping)
    print(f"recording {len(cameras)} camera(s) into {store.describe().rstrip('/')}/cameras/; stop with Ctrl-C",
          flush=True)
    room = RoomKeeper(_recording_volumes(store, home.root / "recording"), settings.floor,
                      make_room=lambda wanted, volume: _free_footage(database, store, wanted, volume))
    try:
        published = Recorder(cameras, store, home.root / "recording", board,
                             stop_grace_s=settings.recorder_stop_seconds, room=room).run(stop)
    except RecorderBusy as exc:
        print(f"reelgraph record: {exc}", file=sys.stderr)
        return 1
    print("stopped; segments published: " + ", ".join(f"{k} {v}" for k, v in published.items()), flush=True)
    return 0


def _recording_volumes(store, spool: Path) -> list[Path]:
    """The folders recording fills: its spool, and the store's folder when the store is local."""
    from video_analysis.runtime.object_store import LocalFolderStore

    return [spool, *([store.root] if isinstance(store, LocalFolderStore) else [])]


def _free_footage(database, store, wanted: int, volume: Path) -> int:
    """Retention at once, for a disk below its floor: the oldest analysed footage without incidents there."""
    from video_analysis.store import db, retention

    with db.connect(database.dsn(), autocommit=True) as conn:
        result = retention.free_space(conn, store, wanted, volume)
    if result.expired:
        log.warning("disk below its floor: retention expired the footage of %d video(s) (%d bytes)", result.expired,
                    result.expired_bytes)
    return result.expired_bytes


# -- process ---------------------------------------------------------------------------------------
def cmd_process(args) -> int:
    fetch_detector()  # before the stages are imported: their versions name the detector
    from dagster import DagsterInstance, materialize

    from assets import VIDEO_STAGES
    from assets.partitions import VIDEOS_PARTITIONS_NAME
    from orchestration.definitions import build_resources
    from orchestration.failures import failure_reasons
    from orchestration.instance import ensure_local_instance
    from orchestration.recovery import worker_tags
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.settings import Settings
    from video_analysis.store import catalog

    settings = Settings.from_env()
    ensure_local_instance(settings.home.ensure())
    instance = DagsterInstance.get()
    _say_recovered(instance)  # a killed earlier run must not hold the GPU pool slot this one needs
    store = ObjectStoreResource().store()
    database = PostgresResource()

    failures = 0
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"FAIL {name}: no such file")
            failures += 1
            continue
        obj = store.put(path, args.prefix + path.name)
        with database.session() as conn:
            catalog.register(conn, obj)
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, [obj.partition_key])
        result = materialize(VIDEO_STAGES, partition_key=obj.partition_key, instance=instance,
                             resources=build_resources(), raise_on_error=False,
                             tags={"reelgraph/object": obj.uri, "reelgraph/launched_by": "cli", **worker_tags()})
        if result.success:
            print(f"ok   {name} -> {obj.partition_key}")
        else:
            failures += 1
            reasons = failure_reasons(result)
            print(f"FAIL {name} -> {obj.partition_key}: {' | '.join(reasons) or 'run failed'}")
    return 1 if failures else 0


# -- register / backfill ---------------------------------------------------------------------------
def cmd_register(args) -> int:
    from dagster import DagsterInstance

    from orchestration.backfill import register_objects
    from orchestration.instance import ensure_local_instance
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.settings import Settings

    settings = Settings.from_env()
    ensure_local_instance(settings.home.ensure())
    store = ObjectStoreResource().store()
    added = register_objects(store, PostgresResource(), DagsterInstance.get(), prefix=args.prefix,
                             settle_seconds=settings.settle_seconds)
    print(f"registered {len(added)} new videos under {store.describe()}{args.prefix} (no runs launched; "
          "process them with `reelgraph backfill`)")
    return 0


def cmd_backfill(args) -> int:
    from assets import VIDEO_STAGES
    from orchestration.backfill import DagsterWebserver, WebserverError, launch_backfill, plan_backfill
    from resources import PostgresResource
    from video_analysis.runtime.settings import Settings
    from video_analysis.store import catalog

    chain = [a.key.to_user_string() for a in VIDEO_STAGES]
    stages = chain[chain.index(args.from_stage):] if args.from_stage else chain
    selection = catalog.VideoSelection(camera=args.camera, since=_when(args.since), until=_when(args.until),
                                       prefix=args.prefix, include_failed=args.include_failed)
    with PostgresResource().session() as conn:
        candidates = catalog.select_videos(conn, selection)
    args.url = args.url or Settings.from_env().dagster_url
    webserver = DagsterWebserver(args.url)
    try:
        plan = plan_backfill(webserver, candidates, stages, stale_only=args.stale)
    except WebserverError as exc:
        print(f"FAIL {exc} (is `reelgraph dev` or the webserver running? see --url)")
        return 1
    fresh = f"; {plan.skipped_fresh} already fresh" if args.stale else ""
    print(f"{len(candidates)} catalogued videos match{fresh}: {plan.describe()}")
    if not plan.partitions or args.dry_run:
        return 0
    title = args.title or " ".join(f"{k}={v}" for k, v in (("camera", args.camera), ("since", args.since),
                                                            ("until", args.until), ("prefix", args.prefix)) if v)
    try:
        backfill_id = launch_backfill(webserver, plan, title=title or "reelgraph backfill")
    except WebserverError as exc:
        print(f"FAIL {exc}")
        return 1
    per_run = Settings.from_env().videos_per_run
    print(f"backfill {backfill_id} launched: up to {per_run} videos per run; follow it in the UI under "
          f"Runs > Backfills ({args.url})")
    return 0


# -- forget ----------------------------------------------------------------------------------------
def cmd_forget(args) -> int:
    """Erase videos on request: footage, derived rows, unused descriptions, Dagster's records of their
    partitions; an audit record of what went (no key, no name)."""
    from dagster import DagsterInstance

    from assets.partitions import forget_partitions
    from orchestration.instance import ensure_local_instance
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.settings import Settings
    from video_analysis.store import erasure
    from video_analysis.store.db import connect

    settings = Settings.from_env()
    try:
        since, until = _when(args.since), _when(args.until)
        with connect(PostgresResource().dsn(), autocommit=True) as conn:
            videos = erasure.select_videos(conn, args.videos, args.camera, since, until)
            if not videos:
                print("nothing matches: no video was erased")
                return 1
            for video in videos:
                when = video.recorded_at.isoformat() if video.recorded_at else "no recording time"
                print(f"{'would erase' if args.dry_run else 'erasing'} {video.partition_key} "
                      f"({video.camera or 'no camera'}, {when}, {video.obj.size / 2**20:.1f} MiB)")
            if args.dry_run:
                rows = erasure.count_rows(conn, [v.partition_key for v in videos])
                print("dry run: nothing erased; would remove " + ", ".join(
                    f"{n} {table}" for table, n in sorted(rows.items()) if n))
                return 0
            if not args.yes:
                print("erasing cannot be undone: run again with --yes (or --dry-run to list what would go)")
                return 2
            done = erasure.erase(conn, ObjectStoreResource().store(), videos,
                                 "videos" if args.videos else "camera and time range")
    except ValueError as exc:
        print(f"reelgraph forget: {exc}", file=sys.stderr)
        return 2
    ensure_local_instance(settings.home.ensure())
    with DagsterInstance.get() as instance:
        kept = forget_partitions(instance, [v.partition_key for v in videos])
    print(f"erased {done.describe()}; audit record {done.audit_id}")
    for run_id in kept:
        print(f"note: Dagster run {run_id} also materialized other videos: its event log still holds these videos' "
              "materialization metadata (summaries, counts); delete that run in the UI where it must go too")
    return 0


# -- retention -------------------------------------------------------------------------------------
def cmd_retention(args) -> int:
    """Apply the zones file's retention policy now (the daily schedule does the same), or print what it would
    do, or the S3 lifecycle rule that moves footage to a colder storage class."""
    from dagster import DagsterInstance

    from assets.partitions import forget_partitions
    from orchestration.instance import ensure_local_instance
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.settings import Settings
    from video_analysis.store import retention
    from video_analysis.store.db import connect

    settings = Settings.from_env()
    try:
        config = retention.load_retention(settings.zones_path)
    except retention.RetentionConfigError as exc:
        print(f"reelgraph retention: {exc}", file=sys.stderr)
        return 2
    if args.lifecycle:
        print(json.dumps(retention.lifecycle_rules(config, args.storage_class, settings.s3_prefix), indent=2))
        return 0
    if not config.configured:
        print(f"no retention policy ({settings.zones_path or 'no zones file'} has no `retention:` section): "
              "footage and facts are kept until removed by hand")
    store = ObjectStoreResource().store()
    with connect(PostgresResource().dsn(), autocommit=True) as conn:
        try:
            plan, result = retention.sweep(conn, store, config, dry_run=args.dry_run)
        except retention.RetentionBusy as exc:
            print(f"reelgraph retention: {exc}", file=sys.stderr)
            return 1
    if args.dry_run:
        for label, items in (("moved to the cold tier", plan.to_cold), ("expired (footage removed)", plan.to_expire),
                             ("erased with its facts", plan.to_erase)):
            for aged in items:
                print(f"{aged.partition_key} ({aged.camera or 'upload'}, {aged.at.isoformat()}): would be {label}")
        print(f"dry run: nothing changed; {plan.describe()}")
        return 0
    erased = result.erased_keys
    if erased:
        ensure_local_instance(settings.home.ensure())
        with DagsterInstance.get() as instance:
            forget_partitions(instance, erased)
    print(f"retention: {result.describe()} in {result.seconds:.1f} s")
    return 1 if result.failures else 0


# -- search ----------------------------------------------------------------------------------------
def _when(text: str | None):
    from datetime import datetime, timezone

    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _service_hits(args) -> list[dict] | None:
    """The hits from a running `reelgraph serve` (models already loaded there), or None when none answers,
    or when the one that answers reads another database than this process would."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from video_analysis.runtime.settings import Settings

    settings = Settings.from_env()
    url, token = settings.service_url.rstrip("/"), settings.service_token or ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    since, until = _when(args.since), _when(args.until)  # zoneless times are UTC, here as in --local
    params = {"q": args.query, "camera": args.camera, "since": since.isoformat() if since else None,
              "until": until.isoformat() if until else None,
              "class": args.class_name, "color": args.color, "incident": args.incident, "video": args.video,
              "kind": args.kind, "history": "true" if args.history else None, "limit": args.limit}
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})

    def get(path: str, timeout_s: float):
        with urllib.request.urlopen(urllib.request.Request(f"{url}{path}", headers=headers),
                                    timeout=timeout_s) as response:
            return json.load(response)

    try:
        health = get("/api/health", 5)
        if "videos" not in health:  # it answers the signed-in only
            log.warning("the service at %s needs a token (REELGRAPH_SERVICE_TOKEN): searching here", url)
            return None
        if health.get("database") != _local_store_identity():
            log.warning("the service at %s reads another database (or none it names): searching here", url)
            return None
        hits = get(f"/api/search?{query}", 30)["hits"]
        log.info("searched through the service at %s", url)
        return hits
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("detail")
        except (ValueError, AttributeError):
            detail = None
        if exc.code == 422 and detail:  # the service answered: a bad parameter, say why
            raise SystemExit(f"reelgraph search: {detail}") from exc
        if exc.code == 401:
            log.warning("the service at %s needs a token (REELGRAPH_SERVICE_TOKEN): searching here", url)
        return None  # something else answers there: search here
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _local_store_identity() -> str:
    from resources import PostgresResource
    from video_analysis.store.db import store_identity

    with PostgresResource().session() as conn:
        return store_identity(conn)


# What the service adds to a hit for its page (where to see it): left out of what the command line prints, so
# a search through the service prints what one run here prints.
SERVICE_ONLY = ("thumbnail_url", "clip_url", "dagster_url", "similar_url", "footage", "footage_note")


def cmd_search(args) -> int:
    from video_analysis.search import SearchFilters

    hits = None if args.local else _service_hits(args)
    if hits is None:  # no service running: the same search, here (models load first, which takes seconds)
        filters = SearchFilters(video=args.video, camera=args.camera, since=_when(args.since),
                                until=_when(args.until), class_name=args.class_name, color=args.color,
                                incident=args.incident, history=args.history)
        hits = [hit.as_dict() for hit in load_search().searcher.find(args.query, filters, args.kind, args.limit)]
    hits = [{key: value for key, value in hit.items() if key not in SERVICE_ONLY} for hit in hits]
    if args.json:
        print(json.dumps(hits, indent=2))
        return 0
    if not hits:
        print("nothing matches: nothing found is close enough in meaning or shares its words")
        return 0
    for h in hits:
        when = h["starts_at"] or f"{h['start_s']:.1f}s"
        what = f"track {h['track_id']} ({h['class_name']})" if h["kind"] == "track" else h["kind"]
        print(f"{h['score']:.4f}  {h['object_key']}  {when}-{h['end_s']:.1f}s  {what}  {h['text']}")
    return 0


# -- dev / db --------------------------------------------------------------------------------------
def fetch_detector() -> None:
    """Fetch the detector's weights (once, into the model cache) before the code location loads: its stages'
    versions name the detector that can run, so a first run that downloaded a better one would otherwise mark
    its own partitions stale at the next load. Unreachable weights are said once; the fallback runs."""
    from resources import ModelRegistryResource

    try:
        model = ModelRegistryResource().resolve("detector")
    except Exception as exc:  # noqa: BLE001 - the detections step says it again, where it matters
        print(f"detector: none can be loaded yet ({exc})", file=sys.stderr)
        return
    print(f"detector: {model.name}" + (f" ({model.note})" if model.note else ""), file=sys.stderr)


def cmd_dev(args) -> int:
    from orchestration.supervisor import Supervisor

    # From the first moment: a stop during start-up must not leave a recorder or `dagster dev` behind.
    with Supervisor("reelgraph dev") as supervisor:
        try:
            return _dev(args, supervisor)
        finally:
            supervisor.stop_all()
            _fail_interrupted_runs()


def _dev(args, supervisor) -> int:
    from dagster import DagsterInstance

    from orchestration.instance import ensure_local_instance
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.object_store import LocalFolderStore
    from video_analysis.runtime.redact import redact
    from video_analysis.runtime.settings import Settings

    settings = Settings.from_env()
    home = settings.home.ensure()
    ensure_local_instance(home)
    with DagsterInstance.get() as instance:
        _say_recovered(instance)  # runs killed with an earlier session: failed, slots freed, retried
    print(f"state folder: {home.root}")
    print(f"database: {redact(PostgresResource().dsn())}")
    fetch_detector()
    store = ObjectStoreResource().store()
    samples = sample_videos_dir()
    if args.sample and isinstance(store, LocalFolderStore) and samples and (samples / SAMPLE_CLIP).exists():
        target = store.root / "samples" / SAMPLE_CLIP
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(samples / SAMPLE_CLIP, target)
            print(f"sample clip placed in the inbox: {target} (the upload sensor picks it up)")
    if supervisor.stopping:
        return 0
    if args.record:
        _start_recorder(home, supervisor)
    print(f"drop videos into {store.describe()}; UI on http://{args.host}:{args.port}")
    command = ["dagster", "dev", "-h", args.host, "-p", str(args.port)]
    workspace = CHECKOUT / "workspace.yaml"
    command += ["-w", str(workspace)] if workspace.exists() else ["-m", "orchestration.definitions"]
    dagster = shutil.which("dagster") or str(Path(sys.executable).parent / "dagster")
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(args.host, f"[{args.host}]" if ":" in args.host else args.host)
    return _supervise(supervisor, [dagster, *command[1:]], CHECKOUT if workspace.exists() else Path.cwd(),
                      f"http://{host}:{args.port}")


def _start_recorder(home, supervisor):
    """`reelgraph record`, in its own process (analysis can never stall it), when a cameras file exists."""
    from video_analysis.recording.cameras import cameras_path

    cameras_file = cameras_path(home.root)
    if not cameras_file.exists():
        return None
    print(f"recording the cameras of {cameras_file} (`reelgraph record`; --no-record to leave them)")
    reelgraph = shutil.which("reelgraph") or str(Path(sys.executable).parent / "reelgraph")
    # SIGTERM at the stop: the recorder publishes its open segments
    return supervisor.start([reelgraph, "record", "--cameras", str(cameras_file)], own_group=False)


def _supervise(supervisor, command: list[str], cwd: Path, url: str) -> int:
    """Run `dagster dev` and watch that its code server keeps answering (orchestration/watchdog.py).

    `dagster dev` runs in a process group of its own, with everything it starts; a stop signal to this
    process stops that whole group (orchestration/supervisor.py). A run in flight is interrupted with it:
    its worker fails it, or, where the worker could not, the recovery after the stop does (its pool slots
    freed), and its retry runs at the next start: no run is left STARTED."""
    from orchestration.backfill import DagsterWebserver
    from orchestration.watchdog import watch

    process = supervisor.start(command, cwd=cwd)
    status = watch(process, DagsterWebserver(url, timeout_s=30))
    return 0 if supervisor.stopping else (128 - status if status < 0 else status)


def _fail_interrupted_runs() -> None:
    """Runs whose workers were stopped with `dagster dev`: failed now (their retries run at the next start)."""
    from dagster import DagsterInstance

    try:
        with DagsterInstance.get() as instance:
            _say_recovered(instance)
    except Exception as exc:  # noqa: BLE001 - the next start recovers them anyway; say so
        print(f"reelgraph dev: runs in flight are recovered at the next start ({type(exc).__name__}: {exc})",
              flush=True)


@dataclass
class LoadedSearch:
    """What searching and answering need, loaded once: the searcher (models, floors, a database pool) and the
    language model that writes answers, when there is one."""

    settings: object
    searcher: object
    writer: object | None = None
    writer_name: str | None = None


def load_search(answers: bool = False, serving: bool = False) -> LoadedSearch:
    """The models search needs and a database pool; with ``answers``, also the language model that writes
    answers (when the profile has one and its weights are cached). ``serving``: for a process answering many
    queries, which embeds them through ONNX Runtime on the service's thread count, also where the text model
    itself runs on a GPU (see Settings.text_runtime)."""
    from resources import ModelRegistryResource, PostgresResource
    from video_analysis.runtime.settings import Settings
    from video_analysis.search import Searcher
    from video_analysis.store.db import PooledDatabase

    settings = Settings.from_env()
    models = ModelRegistryResource()
    model, embedder = models.load("text_embedder")
    if serving and settings.text_runtime == "onnx":
        embedder = _fast_query_embedder(embedder, settings)
    image_model, image_embedder, _ = models.load_optional("image_embedder", allow_download=False)
    writer_model, writer = None, None
    if answers and settings.answer_writer != "off":
        try:
            writer_model, writer, _ = models.load_optional("summarizer", allow_download=False)
        except Exception as exc:  # noqa: BLE001 - an optional writer that cannot load leaves the template
            log.warning("the answer writer did not load (%s: %s); answers use the template", type(exc).__name__, exc)
            writer_model, writer = None, None
    # each search holds two connections (tracks and events side by side), each answer one search; health one
    pool_size = 2 * (settings.service_max_searches + settings.service_max_answers) + 2
    database = PooledDatabase(PostgresResource().dsn(), max_size=pool_size,
                              statement_timeout_ms=settings.service_statement_timeout_ms,
                              lock_timeout_ms=settings.service_lock_timeout_ms, wait_s=5.0)
    searcher = Searcher(database, embedder, model.name, image_embedder, image_model.name if image_model else None,
                        settings.search_min_similarity, settings.search_min_summary_similarity,
                        settings.search_min_incident_similarity)
    return LoadedSearch(settings, searcher, writer, writer_model.name if writer_model else None)


def service_context(answers: bool = False, serving: bool = False):
    """The review service's database, store and models, loaded once (``load_search``)."""
    from resources import ObjectStoreResource
    from service.app import ServiceContext

    loaded = load_search(answers, serving)
    searcher, settings = loaded.searcher, loaded.settings
    return ServiceContext(
        database=searcher.database, store=ObjectStoreResource().store(), text_embedder=searcher.text_embedder,
        text_model_name=searcher.text_model_name, image_embedder=searcher.image_embedder,
        image_model_name=searcher.image_model_name, min_similarity=searcher.min_similarity,
        min_summary_similarity=searcher.min_summary_similarity,
        min_incident_similarity=searcher.min_incident_similarity, answer_writer=loaded.writer,
        answer_writer_name=loaded.writer_name, dagster_url=settings.dagster_url,
        max_answers=settings.service_max_answers, max_searches=settings.service_max_searches,
        disk_floor=settings.floor, workers=searcher.workers)


def _fast_query_embedder(embedder, settings):
    """The text model through ONNX Runtime on the service's threads (REELGRAPH_SERVICE_TORCH_THREADS),
    exported once into the models cache where the model was loaded through torch (on a GPU, say); else the
    model as it is."""
    from video_analysis.vision.embedders import OnnxTextEmbedder, TextEmbedder

    if isinstance(embedder, OnnxTextEmbedder):
        return embedder.with_threads(settings.service_torch_threads)
    if not isinstance(embedder, TextEmbedder):  # an image-text model embeds queries as it is
        return embedder
    try:
        return OnnxTextEmbedder.exported(embedder, settings.model_cache_dir() / "onnx",
                                         threads=settings.service_torch_threads)
    except Exception as exc:  # noqa: BLE001 - torch embeds the same vectors, only slower
        log.warning("queries are embedded through torch (%s: %s)", type(exc).__name__, exc)
        return embedder


def cmd_ask(args) -> int:
    from video_analysis.search import SearchFilters

    loaded = load_search(answers=True)
    writer = loaded.writer.write_answer if loaded.writer is not None else None
    found = loaded.searcher.answer(args.question, SearchFilters(camera=args.camera, since=_when(args.since),
                                                                until=_when(args.until)),
                                   writer, loaded.writer_name or "language model")
    if args.json:
        print(json.dumps({"question": found.question, "answer": found.text, "generator": found.generator,
                          "note": found.note, "citations": [c.__dict__ for c in found.citations]}, indent=2))
        return 0
    print(found.text)
    print(f"  (written by {found.generator}" + (f"; {found.note})" if found.note else ")"))
    for citation in found.citations:
        print(f"  [{citation.ref}] {citation.object_key} {citation.start_s:.1f}-{citation.end_s:.1f} s "
              f"({citation.partition_key})")
    return 0


def cmd_serve(args) -> int:
    import torch
    import uvicorn

    from service.access import AccessError, AccessPolicy, read_tokens
    from service.app import create_app
    from video_analysis.runtime.settings import Settings

    settings = Settings.from_env()
    try:  # before any model loads: a bind that would expose the footage without a token stops here
        policy = AccessPolicy.for_bind(args.host, read_tokens(settings.service_tokens, settings.service_tokens_file),
                                       settings.service_hosts)
    except AccessError as exc:
        print(f"reelgraph serve: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, settings.service_torch_threads))
    app = create_app(service_context(answers=True, serving=True), policy)
    access = "open on loopback" if policy.open else f"{len(policy.tokens)} token(s) required"
    print(f"reelgraph serve: http://{args.host}:{args.port}/ (API docs at /docs; {access}; "
          f"answers to Host {', '.join(policy.hosts)})", flush=True)
    # On a stop signal, requests in flight get up to 20 s to finish. Behind a reverse proxy that terminates TLS,
    # REELGRAPH_SERVICE_FORWARDED_ALLOW_IPS names it, so its X-Forwarded-Proto makes the sign-in cookie Secure.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if not args.verbose else "info",
                timeout_graceful_shutdown=20, forwarded_allow_ips=settings.service_forwarded_allow_ips)
    return 0


def cmd_index(args) -> int:
    from resources import PostgresResource
    from video_analysis.store import vector_index

    with PostgresResource().session() as conn:
        if args.action == "drop":
            models = vector_index.drop_all(conn)
        else:  # with the build settings migrations use (vector_index.use_build_settings)
            models = vector_index.rebuild_all(conn)
    print(f"{args.action}: vector indexes of {', '.join(models) or 'no models'}")
    return 0


def cmd_db(args) -> int:
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
    from video_analysis.runtime.redact import redact
    from video_analysis.runtime.settings import Settings

    settings = Settings.from_env()
    server = EmbeddedPostgres(settings.home.ensure().pgdata)
    if args.action == "stop":
        server.stop()
        print("embedded PostgreSQL stopped")
    else:
        url = settings.database_url or server.start()
        print(url if args.show_password else redact(url))
    return 0


def take_interrupts_back() -> None:
    """A shell starts a command run in the background (``reelgraph process ... &`` in a script) with SIGINT
    ignored, and Dagster, executing in-process, maps SIGTERM onto SIGINT's handler: ``kill`` and ``systemctl
    stop`` would then do nothing, and every process started after would inherit the ignored SIGTERM. A stop
    signal stops reelgraph however it was started."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reelgraph", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("doctor", help="check database, object store, models and GPU").set_defaults(func=cmd_doctor)

    status = commands.add_parser("status", help="one row per video with each stage's state")
    status.add_argument("--json", action="store_true")
    status.add_argument("--limit", type=int, default=1000)
    status.add_argument("--cameras", action="store_true",
                        help="live cameras instead: recording or not, last packet and segment, gaps in 24 h")
    status.add_argument("--storage", action="store_true",
                        help="storage instead: footage bytes per camera, day and tier, free space and days left")
    status.add_argument("--days", type=int, default=14, help="with --storage: how many days back (default 14)")
    status.set_defaults(func=cmd_status)

    process = commands.add_parser("process", help="register local files and run every stage in-process")
    process.add_argument("files", nargs="+")
    process.add_argument("--prefix", default="", help="key prefix in the store, e.g. cameras/lobby/")
    process.set_defaults(func=cmd_process)

    record = commands.add_parser("record", help="record live cameras (cameras.yaml) into segments for the pipeline")
    record.add_argument("--cameras", help="cameras file (default $REELGRAPH_CAMERAS, else <state folder>/cameras.yaml)")
    record.add_argument("--check", action="store_true", help="read the cameras file, print it and exit")
    record.set_defaults(func=cmd_record)

    forget = commands.add_parser("forget", help="erase videos on request: footage, every derived row, an audit "
                                 "record of what went")
    forget.add_argument("videos", nargs="*", help="partition keys or object keys (every version of a key)")
    forget.add_argument("--camera", help="instead: this camera's recordings, within --since/--until")
    forget.add_argument("--since", help="recording start from this ISO time (UTC unless an offset is given)")
    forget.add_argument("--until", help="recording start before this ISO time")
    forget.add_argument("--dry-run", action="store_true", help="list what would go, erase nothing")
    forget.add_argument("--yes", action="store_true", help="erase without asking again (it cannot be undone)")
    forget.set_defaults(func=cmd_forget)

    keep = commands.add_parser("retention", help="apply the retention policy of the zones file now (daily "
                               "schedule: retention_job)")
    keep.add_argument("--dry-run", action="store_true", help="list what would move or go, change nothing")
    keep.add_argument("--lifecycle", action="store_true",
                      help="print the S3 lifecycle configuration that moves footage to a colder storage class "
                           "(apply with aws s3api put-bucket-lifecycle-configuration)")
    keep.add_argument("--storage-class", default="STANDARD_IA",
                      help="S3 storage class of the cold tier (STANDARD_IA, GLACIER_IR, ...)")
    keep.set_defaults(func=cmd_retention)

    register = commands.add_parser("register", help="catalogue stored videos as partitions without running "
                                     "them (bulk imports, then `reelgraph backfill`)")
    register.add_argument("--prefix", default="", help="only keys under this prefix, e.g. cameras/lobby/")
    register.set_defaults(func=cmd_register)

    backfill = commands.add_parser("backfill", help="one Dagster backfill over catalogued videos, batched per run")
    backfill.add_argument("--camera")
    backfill.add_argument("--since", help="recording start from this ISO time (UTC unless an offset is given)")
    backfill.add_argument("--until", help="recording start before this ISO time")
    backfill.add_argument("--prefix", help="object key prefix")
    backfill.add_argument("--from-stage", choices=["raw_video", "detections", "tracks", "attributes", "embeddings",
                                                   "summaries"], help="start the chain here (default raw_video)")
    backfill.add_argument("--stale", action="store_true",
                          help="only videos with a stale or missing stage, from the first such stage on")
    backfill.add_argument("--include-failed", action="store_true", help="also videos whose probe failed")
    backfill.add_argument("--dry-run", action="store_true", help="say what would run, launch nothing")
    backfill.add_argument("--title")
    backfill.add_argument("--url", default=None,
                          help="Dagster webserver (default $REELGRAPH_DAGSTER_URL or http://127.0.0.1:3000)")
    backfill.set_defaults(func=cmd_backfill)

    find = commands.add_parser("search", help="hybrid (vector + full-text) search over tracks")
    find.add_argument("query")
    find.add_argument("--video", help="partition key or part of the object key")
    find.add_argument("--camera")
    find.add_argument("--since", help="ISO time, e.g. 2026-01-15T08:00 (UTC unless an offset is given)")
    find.add_argument("--until")
    find.add_argument("--class", dest="class_name", help="object class, e.g. person")
    find.add_argument("--color", help="clothing or object colour, e.g. red")
    find.add_argument("--incident", help="loitering, crowding, running, zone_intrusion, unattended_object")
    find.add_argument("--history", action="store_true",
                      help="also search versions of a key replaced by a newer upload")
    find.add_argument("--kind", choices=["track", "incident", "summary"], help="only hits of this kind")
    find.add_argument("--local", action="store_true",
                      help="search here even when `reelgraph serve` runs ($REELGRAPH_SERVICE_URL)")
    find.add_argument("--limit", type=int, default=10)
    find.add_argument("--json", action="store_true")
    find.set_defaults(func=cmd_search)

    dev = commands.add_parser("dev", help="start the embedded services and the Dagster UI")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--no-sample", dest="sample", action="store_false", help="do not place the sample clip")
    dev.add_argument("--no-record", dest="record", action="store_false",
                     help="do not start `reelgraph record`, even with a cameras file in the state folder")
    dev.set_defaults(func=cmd_dev)

    ask = commands.add_parser("ask", help="a question about the footage, answered from the matching rows, cited")
    ask.add_argument("question")
    ask.add_argument("--camera")
    ask.add_argument("--since")
    ask.add_argument("--until")
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(func=cmd_ask)

    serve = commands.add_parser("serve", help="the search API and web page over what was found (FastAPI)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    index = commands.add_parser("index", help="vector indexes: drop before a large backfill, rebuild after it")
    index.add_argument("action", choices=["drop", "rebuild"])
    index.set_defaults(func=cmd_index)

    database = commands.add_parser("db", help="embedded database: print its URL (starting it) or stop it")
    database.add_argument("action", choices=["url", "stop"])
    database.add_argument("--show-password", action="store_true", help="print the URL with its password (for psql)")
    database.set_defaults(func=cmd_db)

    args = parser.parse_args(argv)
    take_interrupts_back()
    from video_analysis.runtime.home import StateHome
    from video_analysis.runtime.process import prepare_process

    prepare_process(StateHome.from_env())
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
