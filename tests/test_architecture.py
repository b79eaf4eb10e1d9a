"""Architecture rules the code keeps, checked on the source tree."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def test_cli_start_up_loads_no_heavy_module() -> None:
    """Every command (``localvideo --help``, ``status``, ``search``) imports the CLI and the
    whole service: PyAV and numpy (about half a second), torch, diffusers, Ray, FastAPI and
    the MCP SDK are imported where they are used, so only the commands that need them pay."""
    heavy = ("av", "numpy", "torch", "diffusers", "ray", "fastapi", "uvicorn", "mcp",
             "anthropic", "openai", "playwright")
    code = ("import sys, localvideo.cli, localvideo.service\n"
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [], f"imported when the CLI starts: {r.stdout.split()}"


# -- SQL lives in store/ ---------------------------------------------------------------------

_SQL_START = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "PRAGMA", "WITH", "REPLACE")
_DB_CALLS = {"execute", "executemany", "executescript", "query", "one"}
# What a database handle is called here: Database, its thread connection, a transaction's
# connection, a cursor. A reasoner's execute(request) is not one.
_DB_NAMES = ("db", "conn", "connection", "cur", "cursor", "database")


def _is_sql(text: str, any_case: bool = False) -> bool:
    words = text.lstrip(" \t\r\n(").split(None, 1)
    return len(words) == 2 and (words[0].upper() if any_case else words[0]) in _SQL_START


def _receiver_name(node: ast.expr) -> str:
    """The last name of ``a.b.c`` (``c``); '' for anything else (a call, a subscript)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def sql_offenders(source: str, name: str) -> list[str]:
    """``name:line`` of every database call and SQL string literal in ``source``."""
    tree = ast.parse(source, name)
    docstrings = {id(body[0].value) for body in
                  (n.body for n in ast.walk(tree)
                   if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef
                                 | ast.AsyncFunctionDef))
                  if body and isinstance(body[0], ast.Expr)
                  and isinstance(body[0].value, ast.Constant)}
    found: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _DB_CALLS:
            receiver = _receiver_name(node.func.value).lower()
            first = node.args[0] if node.args else None
            if isinstance(first, ast.JoinedStr) and first.values:
                first = first.values[0]
            sql_arg = isinstance(first, ast.Constant) and isinstance(first.value, str) \
                and _is_sql(first.value, any_case=True)
            if receiver.endswith(_DB_NAMES) or receiver.startswith(_DB_NAMES) or sql_arg:
                found.add((node.lineno, f".{node.func.attr}() on {receiver or 'an expression'}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings and _is_sql(node.value):
            # An f-string's literal parts are Constant nodes too: this sees those as well.
            found.add((node.lineno, f"SQL string {node.value.strip()[:40]!r}"))
    return [f"{name}:{line}: {what}" for line, what in sorted(found)]


def test_sql_lives_in_store() -> None:
    """Every SQL statement is in store/ (one query module per table family, typed rows);
    the rest of the package calls those functions and never touches a connection."""
    src = Path(__file__).resolve().parents[1] / "src" / "localvideo"
    offenders = []
    for path in sorted(src.rglob("*.py")):
        if (src / "store") in path.parents:
            continue
        offenders += sql_offenders(path.read_text(), str(path.relative_to(src)))
    assert not offenders, "SQL outside src/localvideo/store/ (move it into a store module):\n" \
        + "\n".join(offenders)


def test_the_sql_check_sees_what_it_must() -> None:
    """The rule above would pass on an empty tree: prove it flags each form it looks for,
    and leaves a reasoner's execute(), docstrings and prose alone."""
    source = '''
"""Update the index: SELECT nothing here, this is prose."""
def f(db, conn, self, rsn, req, rows):
    """DELETE is a word in this docstring too."""
    db.execute("UPDATE chunks SET state = 'closed'")
    conn.executemany(sql, rows)
    self.db.one(query)
    db.conn.executescript(script)
    rsn.execute(req)
    x = "SELECT id FROM frames WHERE ts > ?"
    y = f"INSERT INTO kv VALUES ({marks})"
    z = "Select a window to record"
    w = "WITH"
    cur = other.query("x")
    store.run("x").execute("select 1 from frames")
'''
    found = [o.split(": ", 1)[0] for o in sql_offenders(source, "m.py")]
    assert found == ["m.py:5", "m.py:5", "m.py:6", "m.py:7", "m.py:8", "m.py:10", "m.py:11",
                     "m.py:15"], sql_offenders(source, "m.py")
