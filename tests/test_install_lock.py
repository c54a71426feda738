"""What the install puts in place is what the lock file says: every pinned package at its pinned version."""

import re
from importlib import metadata

from tests.helpers import REPO


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = (part.strip() for part in line.split("==", 1))
            pins[re.sub(r"[-_.]+", "-", name.split("[", 1)[0]).lower()] = version
    return pins


def test_every_package_of_the_lock_is_installed_at_its_version():
    pins = _pins()
    assert len(pins) > 100 and "dagster" in pins and "psycopg" in pins
    installed = {re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version
                 for dist in metadata.distributions()}
    wrong = {name: (version, installed.get(name)) for name, version in pins.items() if installed.get(name) != version}
    assert not wrong, f"installed versions differ from requirements.lock (pinned, installed): {wrong}"
