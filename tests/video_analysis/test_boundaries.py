"""Layers import one way: video_analysis (no Dagster) <- resources <- assets <- orchestration; the review
service (service/) sits on video_analysis alone."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What each top-level package may not import (directly or in a function body).
FORBIDDEN = {
    # The library is configured by its callers: it never reads the settings itself.
    "video_analysis": {"dagster", "dagster_aws", "dagster_postgres", "configuration", "resources", "assets",
                       "orchestration"},
    "configuration": {"dagster", "resources", "assets", "orchestration", "service"},
    "models": {"dagster", "resources", "assets", "orchestration"},
    "resources": {"assets", "orchestration"},
    "assets": {"orchestration"},
    # The review service reads what the pipeline wrote, through the plain library: no Dagster in it.
    "service": {"dagster", "dagster_aws", "dagster_postgres", "resources", "assets", "orchestration"},
    # Stand-in cameras and their helpers, shared by the tests and the benchmarks; neither imports the tests.
    "testbed": {"tests", "dagster", "resources", "assets", "orchestration"},
    "benchmarks": {"tests"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_layers_import_one_way():
    violations = [
        f"{path.relative_to(REPO)} imports {sorted(imported_roots(path) & forbidden)}"
        for package, forbidden in FORBIDDEN.items()
        for path in sorted((REPO / package).rglob("*.py"))
        if imported_roots(path) & forbidden
    ]
    assert not violations, "\n".join(violations)


# Inside the library, layers from the bottom up: each may import only those below it (or itself).
LIBRARY_LAYERS = ["wording", "vision", "runtime", "events", "evaluation", "store", "search", "recording",
                  "stages"]


def library_imports(path: Path) -> set[str]:
    """The library's sub-packages a module imports (``video_analysis.X...``), directly or in a function body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
        found.update(name.split(".")[1] for name in names if name.startswith("video_analysis."))
    return found


def test_the_library_s_layers_import_downwards_only():
    root = REPO / "video_analysis"
    violations = []
    for path in sorted(root.rglob("*.py")):
        layer = path.relative_to(root).parts[0].removesuffix(".py")
        if layer not in LIBRARY_LAYERS:
            continue
        above = set(LIBRARY_LAYERS[LIBRARY_LAYERS.index(layer) + 1:])
        if library_imports(path) & above:
            violations.append(f"{path.relative_to(REPO)} ({layer}) imports {sorted(library_imports(path) & above)}")
    assert not violations, "\n".join(violations)
    every = {p.relative_to(root).parts[0].removesuffix(".py") for p in root.iterdir()
             if p.suffix == ".py" or p.is_dir() and (p / "__init__.py").exists()} - {"__init__"}
    assert every <= set(LIBRARY_LAYERS), f"place these in LIBRARY_LAYERS: {sorted(every - set(LIBRARY_LAYERS))}"


def test_the_layer_check_sees_an_import_from_above(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from video_analysis.recording.segments import SPOOL_PREFIX\n")
    assert library_imports(module) == {"recording"}


def test_the_boundary_check_sees_a_violation(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from orchestration.definitions import defs\n")
    assert "orchestration" in imported_roots(module)


def test_the_whole_library_loads_without_dagster():
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO / "video_analysis").rglob("*.py")
    )
    assert len(modules) > 30
    code = f"import sys; import {', '.join(modules)}; print('dagster' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "False"


SETTINGS_MODULE = REPO / "configuration" / "settings.py"
# What ships: the library, the entry points over it, and their configuration (the tests, the benchmarks and
# the stand-in cameras they drive set the environment of the processes they start).
PRODUCT = ["video_analysis", "configuration", "models", "resources", "assets", "orchestration", "service"]


def environment_readers(root: Path) -> list[str]:
    """Modules under ``root`` that touch the environment (os.environ, os.getenv, os.putenv) other than the
    settings module: configuration is read in one place."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.resolve() == SETTINGS_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "environb") or (
                    isinstance(node, ast.ImportFrom) and node.module == "os"
                    and {a.name for a in node.names} & {"environ", "getenv", "putenv"}):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_nothing_but_the_settings_module_reads_the_environment():
    assert [reader for package in PRODUCT for reader in environment_readers(REPO / package)] == []


def test_the_environment_check_sees_a_reader(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "bad.py").write_text("import os\nLIMIT = os.environ.get('X')\n")
    (tmp_path / "lib" / "also.py").write_text("from os import getenv\n")
    assert environment_readers(tmp_path / "lib") == ["lib/also.py:1", "lib/bad.py:2"]
