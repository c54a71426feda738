"""Absent sample clips: a skip that says why on a workstation, a failed session in CI (tests/conftest.py)."""

import os
import subprocess
import sys

from tests.helpers import REPO

# A test that needs no clip, and one that needs the bottle clip.
NO_CLIP = "tests/video_analysis/events/test_incidents.py::test_score_and_summary"
NEEDS_CLIP = "tests/video_analysis/vision/test_probe.py::test_bottle_clip"


def _pytest(*tests: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "REELGRAPH_REQUIRE_SAMPLES")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *tests],
                          cwd=REPO, env={**environment, **env}, capture_output=True, text=True, timeout=300)


def test_outside_ci_missing_clips_skip_with_the_reason(tmp_path):
    result = _pytest(NO_CLIP, NEEDS_CLIP, REELGRAPH_SAMPLE_VIDEOS=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert f"sample clips missing from {tmp_path}: one-by-one-person-detection.mp4, bottle-detection.mp4" in (
        result.stdout)


def test_in_ci_missing_clips_fail_the_session_before_any_test(tmp_path):
    for flag in ({"CI": "true"}, {"CI": "1"}, {"REELGRAPH_REQUIRE_SAMPLES": "1"}):
        result = _pytest(NO_CLIP, NEEDS_CLIP, REELGRAPH_SAMPLE_VIDEOS=str(tmp_path), **flag)
        assert result.returncode == 4, (flag, result.stdout + result.stderr)  # pytest's usage-error status
        assert f"sample clips missing from {tmp_path}" in result.stderr, flag
        assert "passed" not in result.stdout and "skipped" not in result.stdout, flag


def test_in_ci_present_clips_run(sample_videos):
    result = _pytest(NEEDS_CLIP, CI="true", REELGRAPH_SAMPLE_VIDEOS=str(sample_videos))
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr
