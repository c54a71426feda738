"""`reelgraph record`: live cameras into segments, with room kept on the disk."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestration.cli.common import log


# -- record ----------------------------------------------------------------------------------------
def cmd_record(args) -> int:
    """Record every camera of the cameras file until SIGTERM or SIGINT; the open segments are published."""
    import signal
    import threading

    from configuration.settings import Settings, cameras_file, environment
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.recording.cameras import CamerasFileError, load_cameras
    from video_analysis.recording.health import HealthBoard
    from video_analysis.recording.recorder import Recorder
    from video_analysis.recording.room_keeper import RoomKeeper
    from video_analysis.recording.spool_lock import RecorderBusy
    from video_analysis.store import db

    settings = Settings.from_env()
    home = settings.home.ensure()
    path = Path(args.cameras) if args.cameras else cameras_file(home)
    try:
        cameras = load_cameras(path, environment())
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
    from video_analysis.runtime.local_store import LocalFolderStore

    return [spool, *([store.root] if isinstance(store, LocalFolderStore) else [])]


def _free_footage(database, store, wanted: int, volume: Path) -> int:
    """Retention at once, for a disk below its floor: the oldest analysed footage without incidents there."""
    from video_analysis.store import db
    from video_analysis.store.free_space import free_space

    with db.connect(database.dsn(), autocommit=True) as conn:
        result = free_space(conn, store, wanted, volume)
    if result.expired:
        log.warning("disk below its floor: retention expired the footage of %d video(s) (%d bytes)", result.expired,
                    result.expired_bytes)
    return result.expired_bytes
