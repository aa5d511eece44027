"""Mutation testing of async_reduce/ with mutmut 3, one group of modules at a time.

``make mutation`` runs this.  Each group pairs some modules with the test
directories that state their rules, and runs in a directory of its own under
``.mutation/`` (a copy of the package and the tests, with a ``[tool.mutmut]``
section naming the group's modules and tests).  mutmut then runs, for each
mutant, only the tests that execute the mutated function.

Usage::

    python tools/mutation.py                 # every group
    python tools/mutation.py core pool       # some groups
    python tools/mutation.py --jobs 1 core   # fewer worker processes
    python tools/mutation.py --report-only   # reprint the last results

Prints the score per module: killed / all mutants, where "killed" includes
mutants that made a test time out, and mutants that no test executes count as
survivors.  Mutants listed in ``tools/mutation_equivalent.txt`` (equivalent to
the original: no test can tell them apart) are shown separately, with the
score that excludes them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
EQUIVALENT = ROOT / "tools" / "mutation_equivalent.txt"

# The reducer's core modules are tested through the reducer and the hooks
# (the hooks' paths of _flight.py and _reducer.py live in tests/hooks), the
# 1.x module paths through tests/compat, and the decorator's workers= path
# through tests/workers.
CORE_TESTS = ["tests/reducer", "tests/hooks", "tests/compat", "tests/workers"]
# contrib/ modules belong to the tests of what they plug into.
CONTRIB_TESTS = {
    "async_reduce/contrib/prometheus.py": "hooks",
    "async_reduce/contrib/opentelemetry.py": "hooks",
    "async_reduce/contrib/redis.py": "pool",
}


# Tests that cannot run under mutmut: they check the acquisition site the
# pool reports, found by skipping the package's own frames, and mutmut's
# trampolines add frames from outside the package.
DESELECT = {
    "pool": [
        "tests/pool/test_pool_borrow.py::test_overdue_connection_is_reclaimed",
        "tests/pool/test_pool_borrow.py::test_run_reports_its_caller_as_the_site",
    ],
}


def discover_groups() -> dict[str, tuple[list[str], list[str]]]:
    """Group name -> (module globs to mutate, test directories)."""
    package = ROOT / "async_reduce"
    top = sorted(f"async_reduce/{p.name}" for p in package.glob("*.py"))
    groups: dict[str, tuple[list[str], list[str]]] = {
        "core": (top, [t for t in CORE_TESTS if (ROOT / t).is_dir()]),
    }
    for sub in sorted(p for p in package.iterdir() if (p / "__init__.py").exists()):
        if sub.name == "contrib":
            continue
        tests = ROOT / "tests" / sub.name
        groups[sub.name] = (
            [f"async_reduce/{sub.name}/*"],
            [f"tests/{sub.name}"] if tests.is_dir() else ["tests"],
        )
    for module in sorted((package / "contrib").glob("*.py")):
        if module.name == "__init__.py":
            continue
        rel = f"async_reduce/contrib/{module.name}"
        owner = CONTRIB_TESTS.get(rel)
        if owner is None:
            # A contrib module of a layer names it: redis_fleet.py,
            # _prometheus_services.py; exporters are tested with the hooks too.
            owner = next((g for g in groups if g != "core" and g in module.stem), None)
            if owner is not None and "redis" not in module.stem:
                tests = groups[owner][1]
                if "tests/hooks" not in tests:
                    tests.append("tests/hooks")
        if owner is not None and owner in groups:
            groups[owner][0].append(rel)
        else:
            groups[f"contrib.{module.stem}"] = ([rel], ["tests"])
    return groups


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def prepare(
    where: Path, modules: list[str], tests: list[str], deselect: list[str]
) -> Path:
    """A fresh copy of the package and tests in ``where``, configured."""
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / "async_reduce", where / "async_reduce", ignore=ignore)
    for extra in ("tests", "examples"):
        shutil.copytree(ROOT / extra, where / extra, ignore=ignore)
    for document in ("README.md", "DEVELOPMENT.md", "CHANGELOG.md"):
        shutil.copy(ROOT / document, where / document)
    config = (ROOT / "pyproject.toml").read_text()
    config += (
        "\n[tool.mutmut]\n"
        'source_paths = ["async_reduce/"]\n'
        'also_copy = ["examples/", "README.md", "DEVELOPMENT.md", "CHANGELOG.md"]\n'
        f"only_mutate = {toml_list(modules)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        "pytest_add_cli_args = "
        + toml_list(
            ["-p", "no:cacheprovider", "-x", "-q"]
            + [f"--deselect={test}" for test in deselect]
        )
        + "\n"
    )
    (where / "pyproject.toml").write_text(config)
    return where


def run_group(group: str, where: Path, jobs: int) -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    print(f"== {group}: mutmut run --max-children {jobs}", flush=True)
    env = dict(os.environ, PYTHONASYNCIODEBUG="", CI="")
    with open(where / "mutmut.log", "w") as log:
        proc = subprocess.run(
            [str(mutmut), "run", "--max-children", str(jobs)],
            cwd=where,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode:
        tail = (where / "mutmut.log").read_text(errors="replace")[-3000:]
        print(tail)
        raise SystemExit(f"mutmut failed for group {group} (see {where}/mutmut.log)")


_RESULT = re.compile(r"^\s*(\S+?)\.(x_\S+|xǁ\S+)__mutmut_(\d+): (.+)$")


def results(where: Path) -> list[tuple[str, str, str]]:
    """(module, mutant name, status) for every mutant of a group's last run."""
    mutmut = Path(sys.executable).with_name("mutmut")
    for attempt in range(5):  # a running mutmut may be rewriting a result file
        done = subprocess.run(
            [str(mutmut), "results", "--all", "true"],
            cwd=where,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            break
        time.sleep(1 + attempt)
    done.check_returncode()
    out = done.stdout
    found = []
    for line in out.splitlines():
        match = _RESULT.match(line)
        if match:
            module = match.group(1)
            name = line.strip().rsplit(": ", 1)[0]
            found.append((module, name, match.group(4).strip()))
    return found


def recheck(group: str, where: Path, tests: list[str], names: list[str]) -> None:
    """Run each surviving mutant again as a plain edit of the source.

    mutmut switches mutants on through trampolines; code that bypasses them
    (a function object built from another's code, a callable installed in an
    instance's ``__dict__``) keeps running the original, so its mutants
    "survive" whatever the tests check.  Here each one is written into the
    source and the group's tests run on it as usual; a failing or hanging run
    kills it.  Verdicts go to ``recheck.json`` and count in the report.
    """
    mutmut = Path(sys.executable).with_name("mutmut")
    verdicts_file = where / "recheck.json"
    verdicts = json.loads(verdicts_file.read_text()) if verdicts_file.exists() else {}
    env = dict(os.environ, PYTHONASYNCIODEBUG="", CI="")
    for index, name in enumerate(names, 1):
        if name in verdicts:
            continue
        module = name.split(".x", 1)[0]
        path = where / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = where / module.replace(".", "/") / "__init__.py"
        original = path.read_text()
        try:
            applied = subprocess.run(
                [str(mutmut), "apply", name], cwd=where, capture_output=True
            )
            if applied.returncode:
                continue
            try:
                run = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pytest",
                        "-x",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                        "--timeout=60",
                        *deselect_args(group),
                        *tests,
                    ],
                    cwd=where,
                    env=env,
                    capture_output=True,
                    timeout=600,
                )
                killed = run.returncode != 0
            except subprocess.TimeoutExpired:
                killed = True
        finally:
            path.write_text(original)
        verdicts[name] = "killed" if killed else "survived"
        verdicts_file.write_text(json.dumps(verdicts, indent=1))
        print(f"  [{index}/{len(names)}] {name}: {verdicts[name]}", flush=True)


def deselect_args(group: str) -> list[str]:
    extra = os.environ.get("MUTATION_DESELECT", "").split()
    return [f"--deselect={test}" for test in [*DESELECT.get(group, []), *extra]]


def load_equivalent() -> dict[str, str]:
    """Mutant name -> one-line reason it cannot be told apart from the original."""
    if not EQUIVALENT.exists():
        return {}
    listed = {}
    for line in EQUIVALENT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            listed[name] = reason.strip()
    return listed


KILLED = {"killed", "timeout", "caught by type check"}


def module_names(patterns: list[str]) -> Any:
    """Whether a dotted module name is one of ``patterns`` (file globs)."""
    dotted = [p.removesuffix(".py").replace("/", ".") for p in patterns]

    def match(module: str) -> bool:
        for pattern in dotted:
            if pattern.endswith(".*"):
                if module.startswith(pattern[:-1]):
                    return True
            elif module == pattern or module == pattern + ".__init__":
                return True
        return False

    return match


def report(groups: list[str], tag: str = "") -> int:
    all_groups = discover_groups()
    equivalent = load_equivalent()
    rows = []
    survivors: list[tuple[str, str]] = []
    for group in groups:
        where = WORK / (group + tag)
        if not (where / "mutants").exists():
            print(f"({group}: not run yet)")
            continue
        by_module: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        mine = module_names(all_groups[group][0])
        rechecked: dict[str, str] = {}
        if (where / "recheck.json").exists():
            rechecked = json.loads((where / "recheck.json").read_text())
        for module, name, status in results(where):
            if rechecked.get(name) == "killed":
                status = "killed"
            if not mine(module):
                continue  # mutated by an older configuration
            counts = by_module[module]
            if status == "not checked":  # the run was stopped before it
                counts["unchecked"] += 1
                continue
            counts["total"] += 1
            if rechecked.get(name) == "killed" and status == "killed":
                counts["rechecked"] += 1
            if status in KILLED:
                counts["killed"] += 1
            elif name in equivalent:
                counts["equivalent"] += 1
            else:
                counts["survived" if status == "survived" else "not run"] += 1
                survivors.append((name, status))
        for module in sorted(by_module):
            c = by_module[module]
            score = 100.0 * c["killed"] / c["total"] if c["total"] else 0.0
            rated = c["total"] - c["equivalent"]
            net = 100.0 * c["killed"] / rated if rated else 100.0
            rows.append((group, module, c, score, net))
    print()
    print(
        f"{'module':34} {'mutants':>7} {'killed':>6} {'(rechk)':>7} {'equiv':>5}"
        f" {'surv':>5} {'no test':>7} {'score':>6} {'net':>6} {'unchecked':>9}"
    )
    for _group, module, c, score, net in rows:
        print(
            f"{module:34} {c['total']:7} {c['killed']:6} {c['rechecked']:7}"
            f" {c['equivalent']:5} {c['survived']:5} {c['not run']:7}"
            f" {score:5.1f}% {net:5.1f}% {c['unchecked']:9}"
        )
    if survivors:
        print(f"\n{len(survivors)} mutants neither killed nor listed as equivalent:")
        for name, status in survivors:
            print(f"  {name}: {status}")
    print(
        "\nscore: killed / mutants; net: killed / (mutants - equivalent);"
        " (rechk): of the killed, those killed on --recheck;"
        "\nunchecked: mutants the run was stopped before, not in the score."
        "\nSee a mutant: cd .mutation/GROUP && mutmut show NAME"
    )
    return 0


def main() -> int:
    groups = discover_groups()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"of: {', '.join(groups)}")
    parser.add_argument("--jobs", type=int, default=2, help="mutmut workers")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated file names: mutate only these modules of the group",
    )
    parser.add_argument(
        "--tag", default="", help="suffix of the work directories (.mutation/GROUPTAG)"
    )
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="rerun the last run's survivors as plain source edits, then report",
    )
    parser.add_argument(
        "--reverse", action="store_true", help="recheck the survivors last first"
    )
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--list", action="store_true", help="show the groups")
    args = parser.parse_args()
    if args.list:
        for name, (modules, tests) in groups.items():
            print(f"{name}: {' '.join(modules)}  <-  {' '.join(tests)}")
        return 0
    chosen = args.groups or list(groups)
    unknown = [g for g in chosen if g not in groups]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; groups: {', '.join(groups)}")
    if args.recheck:
        equivalent = load_equivalent()
        for group in chosen:
            where = WORK / (group + args.tag)
            survivors = [
                name
                for _, name, status in results(where)
                if status in ("survived", "no tests") and name not in equivalent
            ]
            if args.reverse:
                survivors.reverse()
            print(f"== {group}: rechecking {len(survivors)} survivors", flush=True)
            recheck(group, where, groups[group][1], survivors)
    elif not args.report_only:
        only = [name for name in args.only.split(",") if name]
        for group in chosen:
            modules, tests = groups[group]
            if only:
                base = "async_reduce" if group == "core" else f"async_reduce/{group}"
                modules = [f"{base}/{name}" for name in only]
            where = prepare(
                WORK / (group + args.tag), modules, tests, DESELECT.get(group, [])
            )
            run_group(group, where, args.jobs)
    return report(chosen, args.tag)


if __name__ == "__main__":
    raise SystemExit(main())
