"""Benchmark of the command line's start-up: how long a `mailer` command takes, end to end.

    .venv/bin/python benchmarks/cli.py [--runs 20]

Wall time of four commands, each a fresh process as an editor, an operator's script or
a test runs them: `mailer --help`, `mailer check examples/issues/2022-13.yaml`,
`mailer subscribers show x@example.org --json` and `mailer lists list` (the last two on
a fresh SQLite database made by `mailer db upgrade`, with one subscriber and one list,
in a temporary folder). The reference is `python -c pass` with the same interpreter:
every command pays it, so on a busy shared machine the difference is what the command
itself costs. The commands and the reference are interleaved round by round so that
each sees the same load; the figure is the median of `--runs` rounds. The CPU time
(user + system) of each process is reported beside the wall time: on a machine whose
cores other work keeps busy, wall time mostly measures the wait for a core, while CPU
time is what the command itself costs (on an idle machine the two are close: a
command runs on one core). Bytecode is cached as in any installation: the warm-up run
writes it, whatever PYTHONDONTWRITEBYTECODE says.
Targets (issue 16): `--help` under 0.3 s, the other three under 0.7 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAILER = [sys.executable, "-c", "from mailer.cli.main import main; main()"]
ISSUE = ROOT / "examples" / "issues" / "2022-13.yaml"

COMMANDS: dict[str, tuple[list[str], float]] = {
    "python -c pass": ([sys.executable, "-c", "pass"], 0.0),
    "mailer --help": ([*MAILER, "--help"], 0.3),
    "mailer check examples/issues/2022-13.yaml": ([*MAILER, "check", str(ISSUE)], 0.7),
    "mailer subscribers show x@example.org --json": (
        [*MAILER, "subscribers", "show", "x@example.org", "--json"],
        0.7,
    ),
    "mailer lists list": ([*MAILER, "lists", "list"], 0.7),
}


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds from start to exit; a command that fails stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr.decode()}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailer-cli-bench-") as tmp:
        cwd = Path(tmp)
        env = {
            **os.environ,
            "MAILER_DATA_DIR": str(cwd / "data"),
            "MAILER_DATABASE_URL": "",
            "COLUMNS": "100",
        }
        # As installed: the first run caches the bytecode (a sandbox's
        # PYTHONDONTWRITEBYTECODE=1 would compile every module of ours on every run).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for setup in (
            ["db", "upgrade"],
            ["lists", "add", "newsletter", "--public"],
            ["subscribers", "add", "x@example.org", "--name", "X", "--list", "newsletter"],
        ):
            run([*MAILER, *setup], cwd, env)
        for argv, _ in COMMANDS.values():  # warm the file cache and .pyc files
            run(argv, cwd, env)

        walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
        cpus: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.runs):
            for name, (argv, _) in COMMANDS.items():
                wall, cpu = run(argv, cwd, env)
                walls[name].append(wall)
                cpus[name].append(cpu)

    load = os.getloadavg()[0]
    print(
        f"# cli benchmark: median of {args.runs} runs; Python {platform.python_version()},"
        f" {os.cpu_count()} CPUs, load average {load:.1f} at the end"
    )
    print("| command | wall, median | minus `python -c pass` | CPU, median | target | met (wall) |")
    print("|---|---|---|---|---|---|")
    reference = statistics.median(walls["python -c pass"])
    for name, (_, target) in COMMANDS.items():
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        if not target:
            print(f"| `{name}` | {wall:.3f} s | | {cpu:.3f} s | | |")
            continue
        met = "yes" if wall < target else "NO"
        print(
            f"| `{name}` | {wall:.3f} s | {wall - reference:.3f} s | {cpu:.3f} s"
            f" | < {target} s | {met} |"
        )


if __name__ == "__main__":
    main()
