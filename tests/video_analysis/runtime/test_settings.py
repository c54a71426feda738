import pytest

from video_analysis.runtime.settings import Settings


def test_the_answer_writer_setting_takes_auto_or_off_and_refuses_anything_else(monkeypatch):
    monkeypatch.delenv("REELGRAPH_ANSWER_WRITER", raising=False)
    assert Settings.from_env().answer_writer == "auto"
    monkeypatch.setenv("REELGRAPH_ANSWER_WRITER", " OFF ")
    assert Settings.from_env().answer_writer == "off"
    monkeypatch.setenv("REELGRAPH_ANSWER_WRITER", "false")
    with pytest.raises(ValueError, match="REELGRAPH_ANSWER_WRITER must be 'auto' or 'off', not 'false'"):
        Settings.from_env()
