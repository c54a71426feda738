"""Footage through the pipeline and out of it: `process`, `register`, `backfill`, `forget`, `retention`."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from orchestration.cli.common import _say_recovered, _when, fetch_detector


# -- process ---------------------------------------------------------------------------------------
def cmd_process(args) -> int:
    fetch_detector()  # before the stages are imported: their versions name the detector
    from dagster import DagsterInstance, materialize

    from assets import VIDEO_STAGES
    from assets.partitions import VIDEOS_PARTITIONS_NAME
    from configuration.settings import Settings
    from orchestration.definitions import build_resources
    from orchestration.failures import failure_reasons
    from orchestration.instance import ensure_local_instance
    from orchestration.recovery import worker_tags
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.store import catalog

    settings = Settings.from_env()
    ensure_local_instance(settings.home.ensure())
    instance = DagsterInstance.get()
    _say_recovered(instance)  # a killed earlier run must not hold the GPU pool slot this one needs
    store = ObjectStoreResource().store()
    database = PostgresResource()
    resources, loading_ahead = build_resources(), None

    failures = 0
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"FAIL {name}: no such file")
            failures += 1
            continue
        if loading_ahead is None:  # once there is a video to run
            loading_ahead = _load_ahead(resources["models"])
        obj = store.put(path, args.prefix + path.name)
        with database.session() as conn:
            catalog.register(conn, obj)
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, [obj.partition_key])
        result = materialize(VIDEO_STAGES, partition_key=obj.partition_key, instance=instance,
                             resources=resources, raise_on_error=False,
                             tags={"reelgraph/object": obj.uri, "reelgraph/launched_by": "cli", **worker_tags()})
        if result.success:
            print(f"ok   {name} -> {obj.partition_key}")
        else:
            failures += 1
            reasons = failure_reasons(result)
            print(f"FAIL {name} -> {obj.partition_key}: {' | '.join(reasons) or 'run failed'}")
    if loading_ahead is not None:
        loading_ahead.join()  # never exit while it imports: an interpreter ending mid-import can crash
    return 1 if failures else 0


def _load_ahead(models) -> threading.Thread:
    """The steps of these runs share this process, whose second core idles while Dagster sets a run up: the
    detector, the trackers' library and the text model load there meanwhile, one after another (two threads
    importing one package at once can deadlock on its module locks), so the steps find them loaded."""
    from resources.models import one_load_at_a_time
    from video_analysis.vision.tracking import import_tracker_library

    def load() -> None:
        models.preload("detector")
        with one_load_at_a_time():
            import_tracker_library().join()
        models.preload("text_embedder")

    thread = threading.Thread(target=load, name="load-ahead", daemon=True)
    thread.start()
    return thread


# -- register / backfill ---------------------------------------------------------------------------
def cmd_register(args) -> int:
    from dagster import DagsterInstance

    from configuration.settings import Settings
    from orchestration.backfill import register_objects
    from orchestration.instance import ensure_local_instance
    from resources import ObjectStoreResource, PostgresResource

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
    from configuration.settings import Settings
    from orchestration.backfill import DagsterWebserver, WebserverError, launch_backfill, plan_backfill
    from resources import PostgresResource
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
    from configuration.settings import Settings
    from orchestration.instance import ensure_local_instance
    from resources import ObjectStoreResource, PostgresResource
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
    from configuration.settings import Settings
    from orchestration.instance import ensure_local_instance
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.store import retention
    from video_analysis.store.db import connect
    from video_analysis.store.retention_policy import RetentionConfigError, load_retention
    from video_analysis.store.s3_lifecycle import lifecycle_rules

    settings = Settings.from_env()
    try:
        config = load_retention(settings.zones_path)
    except RetentionConfigError as exc:
        print(f"reelgraph retention: {exc}", file=sys.stderr)
        return 2
    if args.lifecycle:
        print(json.dumps(lifecycle_rules(config, args.storage_class, settings.s3_prefix), indent=2))
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
