"""docs/configuration.md is written from the settings module: it cannot drift from what the code reads."""

import re

from configuration.reference import reference
from tests.helpers import REPO

CODE = ["configuration", "video_analysis", "orchestration", "resources", "assets", "service", "models"]


def test_the_configuration_page_is_what_the_settings_module_says():
    assert (REPO / "docs" / "configuration.md").read_text() == reference(), (
        "docs/configuration.md is out of date: python -m configuration.reference > docs/configuration.md")


def test_every_variable_the_code_names_is_on_the_page_with_what_it_means():
    named = {name for folder in CODE for path in (REPO / folder).rglob("*.py")
             for name in re.findall(r"REELGRAPH_[A-Z0-9_]+", path.read_text())}
    page = reference()
    rows = {row.split(" | ")[0]: row for row in page.splitlines() if row.startswith("| `")}
    assert len(named) > 40
    missing = sorted(name for name in named if f"`{name}`" not in page)
    assert not missing, f"named in the code but not on the configuration page: {missing}"
    assert all(len(row.split(" | ")[2]) > 20 for row in rows.values()), "a variable without a meaning"


def test_a_setting_added_without_its_comment_shows_on_the_page_without_one():
    from configuration.reference import entries

    source = ("class Settings:\n    # Said.\n"
              "    said: str = field(default_factory=lambda: _env(\"REELGRAPH_SAID\", \"1\"))\n"
              "\n    bare: str = field(default_factory=lambda: _env(\"REELGRAPH_BARE\"))\n")
    rows = [row for row in entries(source) if row[0][0] in ("REELGRAPH_SAID", "REELGRAPH_BARE")]
    assert rows == [(["REELGRAPH_SAID"], ["1"], "Said."), (["REELGRAPH_BARE"], [None], "")]
