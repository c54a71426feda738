"""A volume that fills under `reelgraph record`: retention frees space first, then recording pauses with a gap that
says why, and resumes by itself when space returns; every published segment plays.

The volume is a real small filesystem (a tmpfs mounted for the test) where the test may mount one, else the
state folder's own disk; either way the floor is set relative to the free space measured at the start, so the
margins are the same (the test prints which volume it used)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.video_analysis.recording.test_live_streams import RecorderProcess, _camera_status, _segments, _start_of
from video_analysis.runtime.disk import DiskFloor, space
from video_analysis.runtime.local_store import LocalFolderStore
from video_analysis.store import catalog
from video_analysis.vision.probe import probe_video

pytestmark = pytest.mark.slow

MIB = 2**20


@pytest.fixture
def volume(tmp_path):
    """A 512 MiB tmpfs when this process may mount one; else a folder on the state folder's disk."""
    folder = tmp_path / "volume"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    print(f"volume: {'a 512 MiB tmpfs' if mounted else 'the state folder disk (no mount allowed here)'}")
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _ballast(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(size // MIB):
            handle.write(b"\0" * MIB)


def _old_footage(db, inbox: Path) -> tuple[list[str], str]:
    """Three analysed videos of 20 MiB without incidents, and one with an incident, on the same volume."""
    archive = inbox / "archive"
    archive.mkdir(parents=True)
    for n in range(4):
        _ballast(archive / f"old-{n}.mp4", 20 * MIB)
    store = LocalFolderStore(inbox)
    for obj in store.list_page("archive/", 100).objects:
        catalog.register(db, obj)
    keys = [k for k, in db.execute("SELECT partition_key FROM videos ORDER BY object_key")]
    for n, key in enumerate(keys):
        db.execute("UPDATE videos SET status = 'ready', duration_s = 600 WHERE partition_key = %s", (key,))
        db.execute("INSERT INTO summaries (partition_key, safety_score, incident_count, incidents, summary, facts, "
                   "generator) VALUES (%s, %s, %s, %s, 'old', '{}', 'test')",
                   (key, 60 if n == 3 else 100, 1 if n == 3 else 0, '[{"type": "loitering"}]' if n == 3 else "[]"))
    return keys[:3], keys[3]


def _gaps(db, camera: str) -> list[tuple]:
    return db.execute("SELECT started_at, ended_at, reason FROM camera_gaps WHERE camera = %s ORDER BY started_at",
                      (camera,)).fetchall()


def test_a_filling_volume_frees_old_footage_then_pauses_recording_with_a_gap_and_resumes(
        volume, db, monkeypatch, tmp_path, person_clip, recorders):
    db.execute("TRUNCATE cameras CASCADE")
    inbox = volume / "inbox"
    monkeypatch.setenv("REELGRAPH_INBOX", str(inbox))
    plain, with_incident = _old_footage(db, inbox)
    floor = space(volume, DiskFloor()).free - 100 * MIB
    recorder = RecorderProcess(tmp_path, {"dock": str(person_clip)},
                               env_extra={"REELGRAPH_DISK_FLOOR": str(floor)}).start()
    recorders.append(recorder)
    wait_for(lambda: _segments(inbox, "dock"), 60, "a first segment", context=recorder.log)

    # 130 MiB more: 30 below the floor, and 60 MiB of old footage without incidents to free
    _ballast(volume / "ballast-1", 130 * MIB)
    wait_for(lambda: db.execute("SELECT count(*) FROM videos WHERE footage = 'expired'").fetchone()[0] >= 2, 30,
             "retention freeing old footage", context=recorder.log)
    expired = {k for k, in db.execute("SELECT partition_key FROM videos WHERE footage = 'expired'")}
    assert expired <= set(plain) and with_incident not in expired  # footage with an incident is never taken
    assert not (inbox / "archive" / "old-0.mp4").exists() and (inbox / "archive" / "old-3.mp4").exists()
    published = len(_segments(inbox, "dock"))
    wait_for(lambda: len(_segments(inbox, "dock")) > published, 40, "recording going on above the floor",
             context=recorder.log)
    assert not _gaps(db, "dock"), recorder.log()

    # 200 MiB more: nothing left that retention may take; recording pauses, with a gap saying why
    _ballast(volume / "ballast-2", 200 * MIB)
    [(paused_at, ended, reason)] = wait_for(lambda: _gaps(db, "dock"), 30, "a gap for the full disk",
                                            context=recorder.log)
    assert ended is None and reason.startswith("disk full: ") and "below the floor" in reason, reason
    assert "recording paused: disk full" in recorder.log()
    wait_for(lambda: _camera_status()["dock"]["state"] == "paused", 30, "the camera shown paused",
             context=recorder.log)

    # space returns: recording resumes by itself, the gap ends
    (volume / "ballast-2").unlink()
    (volume / "ballast-1").unlink()
    [(_, ended, _)] = wait_for(lambda: [g for g in _gaps(db, "dock") if g[1] is not None], 30, "the gap closed",
                               context=recorder.log)
    resumed = wait_for(lambda: [p for p in _segments(inbox, "dock") if _start_of(p) >= ended.replace(microsecond=0)],
                       40, "a segment after the pause", context=recorder.log)
    assert recorder.process.poll() is None, recorder.log()  # never crashed
    # nothing was recorded while paused, and every segment published plays
    during = [p for p in _segments(inbox, "dock") if paused_at < _start_of(p) < ended.replace(microsecond=0)]
    assert not during, during
    assert recorder.stop() == 0, recorder.log()
    for segment in _segments(inbox, "dock"):
        assert probe_video(segment).status in ("ready", "partial"), segment
    assert resumed
