import pytest

from configuration.settings import Settings


def test_the_answer_writer_setting_takes_auto_or_off_and_refuses_anything_else(monkeypatch):
    monkeypatch.delenv("REELGRAPH_ANSWER_WRITER", raising=False)
    assert Settings.from_env().answer_writer == "auto"
    monkeypatch.setenv("REELGRAPH_ANSWER_WRITER", " OFF ")
    assert Settings.from_env().answer_writer == "off"
    monkeypatch.setenv("REELGRAPH_ANSWER_WRITER", "false")
    with pytest.raises(ValueError, match="REELGRAPH_ANSWER_WRITER must be 'auto' or 'off', not 'false'"):
        Settings.from_env()


def test_a_checkouts_state_folder_is_its_own_dot_reelgraph_unless_configured(monkeypatch, tmp_path):
    """Two clones on one machine keep apart: each one's state is `.reelgraph/` beside its code, where the README's
    inbox is, not a folder in the user's home that every clone would share."""
    from configuration.settings import state_home
    from tests.helpers import REPO

    monkeypatch.delenv("REELGRAPH_HOME", raising=False)
    assert state_home().root == REPO / ".reelgraph"
    assert Settings.from_env().home.root == REPO / ".reelgraph"
    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "elsewhere"))
    assert state_home().root == tmp_path / "elsewhere"


def test_an_installed_package_keeps_its_state_in_the_users_data_folder(monkeypatch, tmp_path):
    """Installed from a wheel the code sits in site-packages, with no checkout around it."""
    from pathlib import Path

    from configuration.settings import state_home
    from video_analysis.runtime import home

    monkeypatch.delenv("REELGRAPH_HOME", raising=False)
    monkeypatch.setattr(home, "CHECKOUT", tmp_path / "site-packages")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert state_home().root == Path(tmp_path / "user" / ".local" / "share" / "reelgraph")
