"""The catalogue decides ready or partial by what decoded, and keeps that verdict when the same bytes are re-probed."""

from datetime import UTC, datetime

import pytest

from video_analysis.runtime.object_store import ObjectInfo
from video_analysis.store import catalog
from video_analysis.vision.probe import probe_video


@pytest.fixture
def probed(db, synthetic_clip):
    """The 3 s synthetic clip registered and probed (10 fps, so 1 s is the allowed shortfall)."""
    obj = ObjectInfo("cam/clip.mp4", "v1", synthetic_clip.stat().st_size, datetime(2026, 3, 1, tzinfo=UTC), "local")
    catalog.register(db, obj)
    probe = probe_video(synthetic_clip)
    catalog.save_probe(db, obj.partition_key, probe)
    return obj.partition_key, probe


def _video(db, key):
    return db.execute("SELECT status, decoded_frames, decode_errors, covered_s, notes FROM videos "
                      "WHERE partition_key = %s", (key,)).fetchone()


def test_frames_that_cover_the_duration_make_a_ready_video(db, probed):
    key, probe = probed
    coverage = catalog.save_decode(db, key, frames=30, errors=0, covered_s=2.4, gaps=[], stopped_early=None)
    assert probe.duration_s == pytest.approx(3.0, abs=0.05)
    assert coverage.status == "ready"  # 0.6 s short: within the 1 s tolerance
    assert _video(db, key) == ("ready", 30, 0, 2.4, [])


def test_damage_a_gap_or_a_short_decode_makes_it_partial_with_the_reasons(db, probed):
    key, _ = probed
    coverage = catalog.save_decode(db, key, frames=12, errors=3, covered_s=1.2, gaps=[(0.6, 1.8)],
                                   stopped_early=None)
    assert coverage.status == "partial"
    assert coverage.notes == ["1.2 s of 3.0 s decoded", "3 damaged packets skipped", "1 gap: 0.6-1.8 s"]
    assert _video(db, key)[:3] == ("partial", 12, 3)


def test_re_probing_the_same_bytes_keeps_what_the_full_decode_found(db, probed, synthetic_clip):
    key, probe = probed
    catalog.save_decode(db, key, frames=20, errors=2, covered_s=2.9, gaps=[], stopped_early=None)
    catalog.save_probe(db, key, probe)  # a re-run of raw_video: the probe alone sees nothing wrong
    assert _video(db, key) == ("partial", 20, 2, 2.9, ["2 damaged packets skipped"])


def _superseded(db) -> dict[str, str | None]:
    return dict(db.execute("SELECT version, superseded_by FROM videos ORDER BY version"))


def test_a_re_upload_supersedes_the_old_version_once_it_is_usable_whatever_its_clock(db, probed, synthetic_clip):
    key, probe = probed
    # Uploaded again with `cp -p`: new bytes, but a modification time older than the first upload's.
    newer = ObjectInfo("cam/clip.mp4", "v2", 10, datetime(2025, 1, 1, tzinfo=UTC), "local")
    catalog.register(db, newer)
    assert _superseded(db) == {"v1": None, "v2": None}  # not yet probed: the old footage still stands
    catalog.save_probe(db, newer.partition_key, probe)
    assert _superseded(db) == {"v1": newer.partition_key, "v2": None}


def test_a_re_upload_that_fails_hides_nothing(db, probed):
    key, _ = probed
    bad = ObjectInfo("cam/clip.mp4", "v2", 0, datetime(2026, 3, 2, tzinfo=UTC), "local")
    catalog.register(db, bad)
    catalog.mark_failed(db, bad.partition_key, "the file is empty (0 bytes)")
    assert _superseded(db) == {"v1": None, "v2": None}


def test_other_keys_are_left_alone(db, probed, synthetic_clip):
    key, probe = probed
    other = ObjectInfo("cam/other.mp4", "v9", 10, datetime(2026, 3, 2, tzinfo=UTC), "local")
    catalog.register(db, other)
    catalog.save_probe(db, other.partition_key, probe)
    assert _superseded(db) == {"v1": None, "v9": None}
