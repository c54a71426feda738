import re
from datetime import datetime, timezone

import pytest

from video_analysis.runtime.keys import MAX_KEY_PART, facts_from_key, looks_like_video, partition_key_for

SAFE = re.compile(r"^[A-Za-z0-9._/~-]+@[a-z0-9]+$")


@pytest.mark.parametrize(
    "key",
    [
        "clip.mp4",
        "cam 1/front door.mp4",
        "vidéo été/entrée.mp4",
        "a,b|c[d].mp4",
        "로비/카메라 1.mp4",
        "x" * 400 + ".mp4",
        "../../etc/passwd.mp4",
    ],
)
def test_partition_keys_use_a_safe_bounded_alphabet(key):
    partition = partition_key_for(key, '"9b2cf535f27731c974343645a3985328"')
    assert SAFE.match(partition), partition
    assert "," not in partition and "|" not in partition and ".." not in partition
    assert len(partition.split("@")[0]) <= MAX_KEY_PART


def test_distinct_objects_never_share_a_partition():
    keys = ["a b.mp4", "a_b.mp4", "a,b.mp4", "a|b.mp4", "A b.mp4"]
    partitions = {partition_key_for(k, "etag1") for k in keys}
    assert len(partitions) == len(keys)


def test_same_version_same_partition_new_version_new_partition():
    assert partition_key_for("lobby.mp4", '"abc123"') == partition_key_for("lobby.mp4", "abc123")
    assert partition_key_for("lobby.mp4", "abc123") != partition_key_for("lobby.mp4", "def456")
    assert partition_key_for("cameras/lobby/clip.mp4", "abc") == "cameras/lobby/clip.mp4@abc"


def test_camera_and_recording_time_come_from_the_key():
    facts = facts_from_key("cameras/lobby-2/2026-01-15T08-30-00.mp4")
    assert facts.camera == "lobby-2"
    assert facts.recorded_at == datetime(2026, 1, 15, 8, 30, tzinfo=timezone.utc)
    assert facts_from_key("uploads/holiday.mp4").camera is None


def test_video_extensions():
    assert looks_like_video("a/b/C.MP4") and looks_like_video("x.mkv")
    assert not looks_like_video("notes.txt") and not looks_like_video("folder/")
