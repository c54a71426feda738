"""`reelgraph doctor` and `reelgraph status` (videos, cameras, storage)."""

from __future__ import annotations

import json

from orchestration.cli.common import _when_text


# -- doctor ----------------------------------------------------------------------------------------
def _check_database(settings) -> tuple[bool, str]:
    from video_analysis.store import db, schema, vector_index

    try:
        dsn = db.resolve_dsn(settings.database_url, settings.home.pgdata, settings.postgres_shared_buffers)
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


def cmd_doctor(args) -> int:
    from configuration.settings import Settings

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
    from configuration.settings import Settings
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.disk import describe_bytes
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
