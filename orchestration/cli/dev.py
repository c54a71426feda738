"""`reelgraph dev` (the UI, the daemon and the recorder under one supervisor), `index` and `db`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from orchestration.cli.common import CHECKOUT, SAMPLE_CLIP, _say_recovered, fetch_detector, sample_videos_dir


# -- dev / db --------------------------------------------------------------------------------------
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

    from configuration.settings import Settings
    from orchestration.instance import ensure_local_instance
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.local_store import LocalFolderStore
    from video_analysis.runtime.redact import redact

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
    from configuration.settings import cameras_file as configured_cameras_file

    cameras_file = configured_cameras_file(home)
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
    from configuration.settings import Settings
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
    from video_analysis.runtime.redact import redact

    settings = Settings.from_env()
    server = EmbeddedPostgres(settings.home.ensure().pgdata, settings.postgres_shared_buffers)
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
