"""Static guard: nothing outside actors/state_writer can write under logs/state.

A module outside actors/state_writer that writes files (open for writing, write_text, os.open
with write flags, replace/rename, shutil copies, sqlite, key files ...) must not even mention
the state directory (logs/state, STATE_DIR, state_dir, state_path), nor import the writer's
own file helpers. Tests are exempt: they corrupt files on purpose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.harness import REPO

MENTION = re.compile(r"logs/state|STATE_DIR|state_dir|state_path")
WRITE_METHODS = {"write_text", "write_bytes", "touch", "symlink_to", "hardlink_to"}
WRITE_FUNCTIONS = {
    ("os", "replace"), ("os", "rename"), ("os", "renames"), ("os", "link"), ("os", "symlink"),
    ("os", "truncate"), ("os", "mkfifo"), ("shutil", "copy"), ("shutil", "copy2"), ("shutil", "copyfile"),
    ("shutil", "copytree"), ("shutil", "move"), ("tempfile", "mkstemp"), ("tempfile", "NamedTemporaryFile"),
    ("sqlite3", "connect"), ("auth", "create_certificates"), ("json", "dump"), ("pickle", "dump"),
}
WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}
WRITER_HELPERS = ("actors.state_writer.files", "actors.state_writer.snapshot", "actors.state_writer.journal")
EXEMPT = ("actors/state_writer/", "tests/", ".venv/", "build/")


def _mode_writes(node: ast.Call, position: int) -> bool:
    mode = next((k.value for k in node.keywords if k.arg == "mode"), None)
    if mode is None and len(node.args) > position:
        mode = node.args[position]
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return bool(set(mode.value) & set("wax+"))
    return True  # a computed mode: assume the worst


def file_writes(source: str) -> list[str]:
    """Every call in `source` that can create or change a file, as 'line: call'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = None
        if isinstance(func, ast.Name) and func.id == "open" and _mode_writes(node, 1):
            name = "open"
        elif isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else (
                func.value.attr if isinstance(func.value, ast.Attribute) else None)
            if func.attr in WRITE_METHODS:
                name = func.attr
            elif func.attr == "open" and owner == "os":
                flags = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)} | {
                    n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                if flags & WRITE_FLAGS:
                    name = "os.open"
            elif func.attr == "open" and _mode_writes(node, 0):
                name = ".open"
            elif (owner, func.attr) in WRITE_FUNCTIONS:
                name = f"{owner}.{func.attr}"
        if name:
            found.append(f"{node.lineno}: {name}")
    return found


def imports_writer_helpers(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(WRITER_HELPERS):
            return True
        if isinstance(node, ast.Import) and any(a.name.startswith(WRITER_HELPERS) for a in node.names):
            return True
    return False


def violations(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(EXEMPT) or "/." in f"/{rel}":
            continue
        source = path.read_text()
        if imports_writer_helpers(source):
            out.append(f"{rel}: imports the state writer's file helpers")
        writes = file_writes(source)
        if writes and MENTION.search(source):
            out.append(f"{rel}: writes files ({', '.join(writes[:3])}) and mentions the state directory")
    return out


def test_no_module_outside_the_state_writer_writes_state_files() -> None:
    assert violations(REPO) == []


def test_the_guard_catches_writers(tmp_path: Path) -> None:
    """The guard must be able to fail: plant offenders in a scratch tree and watch it catch them."""
    offenders = {
        "a.py": 'open("logs/state/positions_state.json", "w").write("{}")\n',
        "b.py": "from pathlib import Path\ndef f(settings):\n    (settings.state_dir / 'x.json').write_text('{}')\n",
        "c.py": "import os\ndef f(s):\n    fd = os.open(s.state_path / 'x', os.O_WRONLY | os.O_CREAT)\n",
        "d.py": "import os\nSTATE_DIR = 'x'\ndef f(a, b):\n    os.replace(a, b)\n",
        "e.py": "from actors.state_writer.files import StateFileWriter\n",
        "f.py": "def f(p, m):\n    with p.open(m) as fh:\n        pass\nSTATE = 'logs/state'\n",
    }
    for name, text in offenders.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "reader.py").write_text("import json\ndef f(state_dir):\n    return json.load(open(state_dir))\n")
    (tmp_path / "other_writer.py").write_text("def f(p):\n    p.write_text('fine: not the state dir')\n")
    found = violations(tmp_path)
    assert sorted(v.split(":")[0] for v in found) == sorted(offenders)
