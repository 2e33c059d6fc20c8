"""Benchmark: load + validate + render each seed issue, against the official MJML compiler.

Run from the repository root (after `npm install --prefix benchmarks` once):

    .venv/bin/python benchmarks/render.py [--runs 200]

For each seed issue it reports the median of many runs of
  - load: read the YAML file and validate it into an Issue,
  - render: Issue -> MJML (Jinja2) -> HTML (mjml-python) and the plain-text part,
  - total: both, i.e. what `mailer render` costs per issue after start-up,
and the median time the official `mjml` npm package takes to compile the very same
MJML, measured inside one long-running Node process (start-up and the pipe to it
excluded: Node times each compile itself). Targets (DESIGN.md): under 20 ms per
issue and at least 10x faster than the official compiler.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailer.authoring.content import load_issue  # noqa: E402
from mailer.authoring.render import Renderer  # noqa: E402
from mailer.settings import load_settings  # noqa: E402

SEEDS = ("2022-13", "2022-15")
ROUNDS = 10

# One Node process: reads {"mjml": ..., "runs": n} lines, answers with per-run times.
NODE_WORKER = r"""
const mjml2html = require(require.resolve('mjml', {paths: [process.cwd()]}));
const readline = require('readline');
const rl = readline.createInterface({input: process.stdin});
rl.on('line', async (line) => {
  const job = JSON.parse(line);
  const times = [];
  let size = 0;
  let first = null;
  for (let i = 0; i < job.warmup + job.runs; i++) {
    const start = process.hrtime.bigint();
    let out = mjml2html(job.mjml, {validationLevel: 'soft', minify: false});
    if (out && typeof out.then === 'function') out = await out;
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (first === null) first = ms;
    if (i >= job.warmup) times.push(ms);
    size = Buffer.byteLength(out.html, 'utf8');
  }
  process.stdout.write(JSON.stringify({times, size, first}) + '\n');
});
"""


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_python(
    path: Path,
    renderer: Renderer,
    runs: int,
    load: list[float],
    render: list[float],
    total: list[float],
) -> None:
    renderer.render(load_issue(path))  # warm: template compilation, imports, caches
    for _ in range(runs):
        t0 = time.perf_counter()
        issue = load_issue(path)
        t1 = time.perf_counter()
        renderer.render(issue)
        t2 = time.perf_counter()
        load.append(t1 - t0)
        render.append(t2 - t1)
        total.append(t2 - t0)


def time_mjml_python_only(mjml_source: str, runs: int, samples: list[float]) -> None:
    for _ in range(runs):
        t0 = time.perf_counter()
        Renderer.html(mjml_source)
        samples.append(time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per issue")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(
            env_file=None, data_dir=Path(data), public_base_url="https://news.example.org"
        )
        renderer = Renderer.from_settings(settings)
        node = subprocess.Popen(
            ["node", "-e", NODE_WORKER],
            cwd=REPO / "benchmarks",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert node.stdin is not None and node.stdout is not None
        rows = []
        for slug in SEEDS:
            path = REPO / "examples" / "issues" / f"{slug}.yaml"
            issue = load_issue(path)
            mjml_source = renderer.mjml(issue)
            # Interleave our runs with the official compiler's in rounds, so that both
            # see the same load on a shared machine.
            per_round = max(1, args.runs // ROUNDS)
            load: list[float] = []
            render: list[float] = []
            total: list[float] = []
            compile_only: list[float] = []
            official_times: list[float] = []
            official: dict[str, Any] = {}
            for round_number in range(ROUNDS):
                time_python(path, renderer, per_round, load, render, total)
                time_mjml_python_only(mjml_source, per_round, compile_only)
                job = {
                    "mjml": mjml_source,
                    "runs": per_round,
                    "warmup": 20 if round_number == 0 else 2,
                }
                node.stdin.write(json.dumps(job) + "\n")
                node.stdin.flush()
                answer = json.loads(node.stdout.readline())
                official = official or answer
                official_times.extend(answer["times"])
            ours = {
                "load_ms": median_ms(load),
                "render_ms": median_ms(render),
                "total_ms": median_ms(total),
            }
            official_ms = statistics.median(official_times)
            compile_ms = median_ms(compile_only)
            rows.append(
                {
                    "issue": slug,
                    **ours,
                    "mjml_python_ms": compile_ms,
                    "official_mjml_ms": official_ms,
                    "official_first_ms": official["first"],
                    "html_kb": len(renderer.render(issue).html.encode()) / 1024,
                    "official_html_kb": official["size"] / 1024,
                    "speedup_total": official_ms / ours["total_ms"],
                    "speedup_compile": official_ms / compile_ms,
                }
            )
        node.stdin.close()
        node.wait(timeout=30)

    mjml_version = json.loads(
        (REPO / "benchmarks" / "node_modules" / "mjml" / "package.json").read_text()
    )["version"]
    print(
        f"# render benchmark: {args.runs} runs per issue, median; {platform.python_version()},"
        f" node {subprocess.check_output(['node', '--version'], text=True).strip()},"
        f" mjml {mjml_version}, {os.cpu_count()} CPUs"
    )
    header = (
        "| issue | load+validate | render (MJML+HTML+text) | **total (ours)** | mjml-python"
        " compile | official mjml compile, warm (first call) | compile vs compile"
        " | total (ours) vs official compile | HTML ours / official |"
    )
    print(header)
    print("|" + "---|" * 9)
    for r in rows:
        print(
            f"| {r['issue']} | {r['load_ms']:.2f} ms | {r['render_ms']:.2f} ms"
            f" | **{r['total_ms']:.2f} ms** | {r['mjml_python_ms']:.2f} ms"
            f" | {r['official_mjml_ms']:.2f} ms ({r['official_first_ms']:.0f} ms)"
            f" | {r['speedup_compile']:.1f}x | {r['speedup_total']:.1f}x"
            f" | {r['html_kb']:.1f} KB / {r['official_html_kb']:.1f} KB |"
        )
    under = all(r["total_ms"] < 20 for r in rows)
    compile10 = all(r["speedup_compile"] >= 10 for r in rows)
    total10 = all(r["speedup_total"] >= 10 for r in rows)
    print()
    print(f"under 20 ms per issue (load+validate+render): {'yes' if under else 'NO'}")
    print(f">= 10x the official compiler, compile vs compile: {'yes' if compile10 else 'NO'}")
    print(
        f">= 10x the official compiler, our whole pipeline vs its compile: "
        f"{'yes' if total10 else 'NO'}"
    )


if __name__ == "__main__":
    main()
