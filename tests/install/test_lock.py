"""requirements/lock.txt stays the exact install of pyproject.toml (docs/operations.md, "Pinned installs").

`make venv` installs only what the lock names, so a requirement added to pyproject.toml without
`make lock` would silently be missing; these checks catch that drift before it ships.
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from config.settings import REPO_ROOT

LOCK = REPO_ROOT / "requirements" / "lock.txt"
PYPROJECT = REPO_ROOT / "pyproject.toml"
# What `make lock` resolves for; markers in pyproject are judged for this platform.
TARGET_ENV = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
              "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
              "implementation_name": "cpython", "platform_python_implementation": "CPython"}
STALE = "requirements/lock.txt is out of step with pyproject.toml: run `make lock` and commit the result"


def parse_lock(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for every requirement line of a pip-compile output."""
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in re.sub(r"\\\n", " ", text).splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        spec, *options = entry.split(" --")
        req = Requirement(spec.strip())
        versions = [s.version for s in req.specifier if s.operator == "=="]
        assert len(versions) == 1 and len(req.specifier) == 1, f"not an exact pin: {entry[:120]}"
        hashes = [o.split("=", 1)[1] for o in options if o.startswith("hash=")]
        pins[canonicalize_name(req.name)] = (versions[0], hashes)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())
    specs = [*project["build-system"]["requires"], *project["project"]["dependencies"]]
    for extra in project["project"].get("optional-dependencies", {}).values():
        specs += extra
    return [Requirement(s) for s in specs]


def unmet(pins: dict[str, tuple[str, list[str]]], requirements: list[Requirement]) -> list[str]:
    problems = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate(TARGET_ENV):
            continue
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req}: not in the lock")
        elif not req.specifier.contains(pin[0], prereleases=True):
            problems.append(f"{req}: locked at {pin[0]}")
    return problems


def test_every_pyproject_requirement_is_locked_at_a_version_in_its_range() -> None:
    problems = unmet(parse_lock(LOCK.read_text()), declared())
    assert not problems, STALE + "\n" + "\n".join(problems)


def test_every_locked_package_is_pinned_with_hashes() -> None:
    pins = parse_lock(LOCK.read_text())
    # pip-compile with --allow-unsafe: the installer and build backend are pinned too.
    assert {"pip", "setuptools", "pip-tools"} <= pins.keys()
    unhashed = [name for name, (_, hashes) in pins.items() if not all(h.startswith("sha256:") for h in hashes)
                or not hashes]
    assert not unhashed, f"pinned without sha256 hashes (pip --require-hashes refuses them): {unhashed}"
    assert "--index-url" not in LOCK.read_text(), "the lock must not name an index: the machine's pip config does"


def test_the_drift_check_sees_a_missing_or_out_of_range_pin() -> None:
    pins = {"pyzmq": ("25.1.0", ["sha256:00"])}
    assert unmet(pins, [Requirement("pyzmq>=26")]) == ["pyzmq>=26: locked at 25.1.0"]
    assert unmet(pins, [Requirement("ccxt>=4.3")]) == ["ccxt>=4.3: not in the lock"]
    assert unmet(pins, [Requirement("pywin32>=300; sys_platform == 'win32'")]) == []
    assert parse_lock("PyZMQ==26.0.1 \\\n    --hash=sha256:ab\n    # via x\n") == {"pyzmq": ("26.0.1", ["sha256:ab"])}


def test_make_venv_installs_from_the_lock() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    stamp_rule = re.search(r"^\$\(STAMP\):(.*)$", makefile, re.M)
    assert stamp_rule and "$(LOCK)" in stamp_rule.group(1), "the venv must be rebuilt when the lock changes"
    assert "--require-hashes -r $(LOCK)" in makefile
    assert "--no-deps" in makefile and "-e '.[dev]'" not in makefile, "the project must not resolve its own deps"
