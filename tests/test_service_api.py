"""The service's contract is its types: docs/SERVICE-API.md is generated from them, and the
front ends are typed against the service (mypy checks the boundary)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from localvideo.service import Service
from localvideo.service.apidoc import render

ROOT = Path(__file__).resolve().parents[1]
FRONT_ENDS = [ROOT / "src/localvideo/mcp_server.py", *sorted((ROOT / "src/localvideo/web")
                                                          .glob("*.py")),
              *sorted((ROOT / "src/localvideo/cli").glob("*.py"))]


def test_the_committed_contract_is_the_generated_one() -> None:
    doc = ROOT / "docs" / "SERVICE-API.md"
    assert doc.read_text() == render(), (
        "docs/SERVICE-API.md is out of date: run "
        "`.venv/bin/python -m localvideo.service.apidoc > docs/SERVICE-API.md`")
    out = subprocess.run([sys.executable, "-m", "localvideo.service.apidoc"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out == doc.read_text()


def test_the_contract_names_every_area_and_method() -> None:
    text = render()
    svc_areas = [a for a in Service.__annotations__ if not a.startswith("_")]
    assert {"record", "analyze", "synth", "jobs", "prefs", "token", "act", "doctor",
            "autostart", "keys"} <= set(svc_areas)
    for area in svc_areas:
        assert f"## `svc.{area}`" in text, area
    assert "`svc.record.chunks(since: str | float | None = None" in text, text
    assert "### LocalChunk (extends Chunk)" in text and "`abs_path: str`" in text


def test_front_ends_take_the_service_as_a_type() -> None:
    # The boundary the design rests on: no `service: Any`, no type: ignore hiding it.
    for path in FRONT_ENDS:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.arg) and node.arg in ("svc", "service"):
                assert node.annotation is not None and ast.unparse(node.annotation) == \
                    "Service", (path.name, node.lineno, ast.unparse(node.annotation or node))
        assert "type: ignore" not in path.read_text(), path.name
        assert "parse_time" not in path.read_text(), (
            f"{path.name} parses times itself: pass the text to the service")
        assert ".execute(" not in path.read_text(), path.name
