import subprocess
import sys
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "video_analysis"


def test_the_library_never_imports_dagster():
    modules = sorted(f"video_analysis.{p.stem}" for p in LIBRARY.glob("*.py") if p.stem != "__init__")
    code = f"import sys; import {', '.join(modules)}; print('dagster' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
