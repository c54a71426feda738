import pytest


@pytest.fixture
def recorders():
    """The `reelgraph record` processes a test starts (RecorderProcess), killed with their group at its end."""
    started: list = []
    yield started
    for recorder in started:
        recorder.kill()
