"""docs/configuration.md, written from the settings module itself: each variable, its default and the comment
above the setting that reads it, so the reference cannot drift from the code.

    python -m configuration.reference > docs/configuration.md
"""

from __future__ import annotations

import ast
from pathlib import Path

from configuration import settings

READERS = {"_env", "_positive_int", "_choice"}
HEADER = """# Configuration

Every setting comes from the environment, read in one place (`configuration/settings.py`); this
page is written from that module (`python -m configuration.reference > docs/configuration.md`,
and a test fails when it is out of date). Per-camera settings (zones, rules, tiles, track classes, retention)
live in the zones file, and the cameras `reelgraph record` pulls in the cameras file: see the README.

| variable | default | meaning |
|---|---|---|
"""


def _variables(node: ast.AST) -> list[tuple[str, str | None]]:
    """(name, default) of each environment variable a setting's expression reads, outermost first."""
    found: dict[str, str | None] = {}
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in READERS and call.args:
            first = call.args[0]
            names = [first] if not isinstance(first, ast.IfExp) else [first.body, first.orelse]
            second = call.args[1] if len(call.args) > 1 else None
            default = second.value if isinstance(second, ast.Constant) and second.value not in (None, "") else None
            for name in names:
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    if found.get(name.value) is None:
                        found[name.value] = None if default is None else str(default)
    return list(found.items())


def _comment_above(lines: list[str], line: int) -> tuple[str, int]:
    """The comment block ending right above ``line`` (1-based), joined, and where it starts (0 when none)."""
    text, start = [], line - 1
    while start >= 1 and lines[start - 1].strip().startswith("#"):
        text.insert(0, lines[start - 1].strip().lstrip("#").strip())
        start -= 1
    return " ".join(text), (start + 1 if text else 0)


def entries(source: str | None = None) -> list[tuple[list[str], list[str | None], str]]:
    """([variables], [their defaults], meaning) in the order the settings module declares them."""
    source = source if source is not None else Path(settings.__file__).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    rows: list[tuple[list[str], list[str | None], str]] = [
        ([name], [default], meaning) for name, (default, meaning) in settings.READ_THROUGH_ENV.items()]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and _variables(node):
            if node.name in ("sensor_interval_seconds", "state_home", "cameras_file", "env"):
                continue  # documented with the setting that calls it / in READ_THROUGH_ENV
            doc = " ".join((ast.get_docstring(node) or "").split())
            name, default = _variables(node)[0]
            rows.append(([name], [default], doc.split(": ", 1)[1] if doc.startswith(name) and ": " in doc else doc))
    settings_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    comment_of_previous, previous_end = "", 0
    for node in settings_class.body:
        if not isinstance(node, ast.AnnAssign) or node.value is None:
            continue
        comment, _ = _comment_above(lines, node.lineno)
        grouped = not comment and previous_end == node.lineno - 1  # one comment over adjacent settings
        comment = comment or (comment_of_previous if grouped else "")
        found = _variables(node.value)
        if "sensor_interval_seconds" in ast.unparse(node.value):
            found = [("REELGRAPH_SENSOR_INTERVAL_SECONDS", "15")]
        if found:
            if grouped and rows:
                rows[-1] = (rows[-1][0] + [n for n, _ in found], rows[-1][1] + [d for _, d in found], comment)
            else:
                rows.append(([n for n, _ in found], [d for _, d in found], comment))
        comment_of_previous, previous_end = comment, node.end_lineno
    return rows


def reference() -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    def default(value: str | None) -> str:
        return f"`{value}`" if value else "unset"

    body = "".join(f"| {' / '.join(f'`{n}`' for n in names)} | {' / '.join(default(d) for d in defaults)} | "
                   f"{cell(meaning)} |\n" for names, defaults, meaning in entries())
    return HEADER + body


if __name__ == "__main__":
    print(reference(), end="")
