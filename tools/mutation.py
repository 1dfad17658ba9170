"""`make mutation`: mutation testing of the critical modules with mutmut, one module at a time.

mutmut rather than cosmic-ray: it needs no session database or worker setup, maps each mutant to the
tests that cover it (so each module's own fast tests run, not the suite), and installs from the lock
like every other tool. Each module is mutated in a scratch copy of the work tree (the checkout is
never touched), against the in-process tests that target it: tests that start `v7` processes run
the installed, unmutated code, so they cannot kill a mutant and are left out of the selections.

Usage: python -m tools.mutation [MODULE ...] [--show] [--jobs N]
Prints one line per module, the surviving mutants (with --show their diffs), and as its last line
`mutation: K killed of N (P%)`. Exits 1 when a module is under the target.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.90
# Everything importable is copied into mutmut's mutants/ tree so that imports resolve there.
PACKAGES = ["domain", "bus", "actors", "exchange", "config", "cli", "bench"]


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]


MODULES: dict[str, Module] = {
    "journal": Module("actors/state_writer/journal.py", (
        "tests/state_plane/test_durability_order.py", "tests/state_plane/test_journal_unit.py",
        "tests/state_plane/test_journal.py", "tests/state_plane/test_journal_survivors.py")),
    "atomic_file": Module("actors/base/atomic_file.py", ("tests/state_plane/test_durability_order.py",)),
    # The codec properties (test_codec_properties.py, ~20 s a run) would cost hours over every decoder mutant.
    "codec": Module("bus/codec.py", ("tests/state_plane/test_codec.py", "tests/state_plane/test_message_bounds.py",
                                  "tests/state_plane/test_codec_refusals.py")),
    "nav_guard": Module("actors/sync/nav_guard.py", ("tests/trading/test_nav_guard.py",
                                                     "tests/trading/test_boundaries.py")),
    "positions": Module("domain/positions.py", ("tests/trading/test_position_arithmetic.py",
                                                "tests/trading/test_positions_rows.py")),
    "store_positions": Module("actors/state_writer/store/positions.py", (
        "tests/store/test_position_rules.py", "tests/store/test_store_position_rules.py",
        "tests/trading/test_position_arithmetic.py")),
    "paper_engine": Module("exchange/paper/engine.py", (
        "tests/trading/test_paper_engine_rules.py", "tests/trading/test_paper_exchange.py",
        "tests/trading/test_exchange_streams.py", "tests/trading/test_position_arithmetic.py")),
    "liveness": Module("actors/diagnostics/liveness.py", ("tests/diagnostics/test_liveness.py",
                                                          "tests/trading/test_boundaries.py")),
    "risk": Module("actors/executor/risk.py", ("tests/trading/test_strategy_risk.py",
                                               "tests/trading/test_boundaries.py")),
    "exit_rules": Module("actors/exit_scanner/rules.py", ("tests/trading/test_exit_rules.py",)),
    "exit_registry": Module("actors/exit_scanner/registry.py", ("tests/trading/test_exit_rules.py",)),
    "reconciliation": Module("actors/state_writer/store/reconciliation.py",
                             ("tests/store/test_reconciliation_unit.py",)),
    "reconcile_compare": Module("actors/state_writer/store/compare.py", ("tests/store/test_reconciliation_unit.py",)),
    "ingest": Module("actors/state_writer/ingest.py", ("tests/state_plane/test_ingest_judge.py",)),
    "authority": Module("actors/state_writer/authority.py", ("tests/state_plane/test_ingest_judge.py",)),
    "streams": Module("actors/state_writer/state.py", ("tests/state_plane/test_stream_table.py",
                                                      "tests/state_plane/test_writer_state.py")),
}

KILLED = {"killed", "timeout"}


def say(line: str) -> None:
    """A report line, flushed (the run is long; a pipe should see each module as it ends)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # a mutant that makes the tests hang is caught too


def scratch_root() -> Path:
    digest = hashlib.md5(str(REPO).encode()).hexdigest()[:8]
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"v7-mutation-{os.getuid()}-{digest}"


def copy_tree(dest: Path) -> None:
    """The tracked and new (not ignored) files of the work tree, as they are now."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.split(b"\0")
    for raw in filter(None, listed):
        src = REPO / raw.decode()
        if src.is_file():
            (dest / raw.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / raw.decode())


def configure(dest: Path, module: Module) -> None:
    lines = ["[mutmut]", "source_paths =", *(f"    {p}" for p in PACKAGES), f"only_mutate = {module.path}",
             "pytest_add_cli_args_test_selection =", *(f"    {t}" for t in module.tests),
             "pytest_add_cli_args =", "    -p", "    no:cacheprovider", "    -m", "    not slow", ""]
    (dest / "setup.cfg").write_text("\n".join(lines))


def run_module(name: str, module: Module, jobs: int, show: bool) -> tuple[int, int, list[str]]:
    dest = scratch_root() / name
    copy_tree(dest)
    configure(dest, module)
    mutmut = [str(Path(sys.executable).with_name("mutmut"))]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run(["nice", "-n", "10", *mutmut, "run", "--max-children", str(jobs)], cwd=dest, env=env,
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-3000:] + "\n" + run.stderr[-3000:] + "\n")
        raise SystemExit(f"mutmut failed on {name} (exit {run.returncode})")
    results = subprocess.run([*mutmut, "results", "--all", "true"], cwd=dest, env=env, check=True,
                             capture_output=True, text=True).stdout
    statuses = dict(re.findall(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$", results, re.MULTILINE))
    killed = sum(1 for s in statuses.values() if s in KILLED)
    survivors = sorted(m for m, s in statuses.items() if s not in KILLED)
    for mutant in survivors:
        say(f"  {statuses[mutant]}: {mutant}")
        if show:
            diff = subprocess.run([*mutmut, "show", mutant], cwd=dest, env=env, capture_output=True, text=True,
                                  check=False)
            say("    " + diff.stdout.strip().replace("\n", "\n    "))
    return killed, len(statuses), survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], metavar="MODULE",
                        help=f"some of: {', '.join(MODULES)} (default: all)")
    parser.add_argument("--show", action="store_true", help="print each surviving mutant's diff")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1: shared machines)")
    args = parser.parse_args(argv)
    total_killed = total = 0
    below = []
    for name in args.modules or list(MODULES):
        killed, count, _survivors = run_module(name, MODULES[name], args.jobs, args.show)
        score = killed / count if count else 0.0
        say(f"{name} ({MODULES[name].path}): {killed} killed of {count} ({score:.1%})")
        total_killed += killed
        total += count
        if score < TARGET:
            below.append(name)
    if below:
        say(f"under the {TARGET:.0%} target: {', '.join(below)}")
    say(f"mutation: {total_killed} killed of {total} ({total_killed / max(total, 1):.1%})")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
