"""The ``reelgraph`` command: set up, check, process and inspect without opening the UI. One module per command
group; this one reads the command line and calls the command."""

import argparse
import logging
import sys

from orchestration.cli.common import (
    fetch_detector,  # noqa: F401
    sample_videos_dir,  # noqa: F401
)
from orchestration.cli.dev import cmd_db, cmd_dev, cmd_index, take_interrupts_back  # noqa: F401
from orchestration.cli.footage import cmd_backfill, cmd_forget, cmd_process, cmd_register, cmd_retention
from orchestration.cli.health import cmd_doctor, cmd_status
from orchestration.cli.recording import cmd_record
from orchestration.cli.searching import (  # noqa: F401
    LoadedSearch,
    _fast_query_embedder,
    cmd_ask,
    cmd_search,
    cmd_serve,
    load_search,
    service_context,
)


def _health_commands(commands) -> None:
    """doctor, status"""
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


def _footage_commands(commands) -> None:
    """process, forget, retention, register, backfill"""
    process = commands.add_parser("process", help="register local files and run every stage in-process")
    process.add_argument("files", nargs="+")
    process.add_argument("--prefix", default="", help="key prefix in the store, e.g. cameras/lobby/")
    process.set_defaults(func=cmd_process)

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


def _recording_commands(commands) -> None:
    """record"""
    record = commands.add_parser("record", help="record live cameras (cameras.yaml) into segments for the pipeline")
    record.add_argument("--cameras", help="cameras file (default $REELGRAPH_CAMERAS, else <state folder>/cameras.yaml)")
    record.add_argument("--check", action="store_true", help="read the cameras file, print it and exit")
    record.set_defaults(func=cmd_record)


def _searching_commands(commands) -> None:
    """search, ask, serve"""
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


def _dev_commands(commands) -> None:
    """dev, index, db"""
    dev = commands.add_parser("dev", help="start the embedded services and the Dagster UI")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--no-sample", dest="sample", action="store_false", help="do not place the sample clip")
    dev.add_argument("--no-record", dest="record", action="store_false",
                     help="do not start `reelgraph record`, even with a cameras file in the state folder")
    dev.set_defaults(func=cmd_dev)

    index = commands.add_parser("index", help="vector indexes: drop before a large backfill, rebuild after it")
    index.add_argument("action", choices=["drop", "rebuild"])
    index.set_defaults(func=cmd_index)

    database = commands.add_parser("db", help="embedded database: print its URL (starting it) or stop it")
    database.add_argument("action", choices=["url", "stop"])
    database.add_argument("--show-password", action="store_true", help="print the URL with its password (for psql)")
    database.set_defaults(func=cmd_db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reelgraph", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_health_commands, _footage_commands, _recording_commands, _searching_commands, _dev_commands):
        add(commands)
    args = parser.parse_args(argv)
    take_interrupts_back()
    from configuration.process import prepare_process
    from configuration.settings import state_home

    prepare_process(state_home())
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
