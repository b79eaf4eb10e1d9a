"""Architecture rules the code keeps, checked on the source tree."""

from __future__ import annotations

import ast
from pathlib import Path


def test_only_media_imports_pyav() -> None:
    """PyAV is opened in one module (media.py): probing, decoding and writing H.264 have one
    answer. Everything else asks media.py."""
    src = Path(__file__).resolve().parents[1] / "src" / "localvideo"
    offenders = []
    for path in sorted(src.rglob("*.py")):
        if path == src / "media.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            if any(n == "av" or n.startswith("av.") for n in names):
                offenders.append(f"{path.relative_to(src)}:{node.lineno}")
    assert not offenders, f"import av outside media.py: {offenders}"
