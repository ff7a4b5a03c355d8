"""Run the benchmarks: how much the client adds to what any client must do, and how fast the
voice loop's parts are.

    python -m benchmarks                     # every module
    python -m benchmarks --quick             # shorter replies, fewer repetitions
    python -m benchmarks --only streaming --tree old=/tmp/old   # two trees side by side
    python -m benchmarks --profile sessions  # profile one case of this tree (pyinstrument)
    python -m benchmarks --out /tmp/bench    # also /tmp/bench.json and /tmp/bench.md

Tables go to stdout as markdown; files are written only where `--out` says.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import import_module
from pathlib import Path
from typing import Any

# What is measured, in the order it runs.
MODULES = [
    "invoke",
    "internals",
    "streaming",
    "web_load",
    "voice_dsp",
    "resampling",
    "turn_taking",
    "engine_turns",
]


def call(ref: str, arg: str) -> None:
    """`--call module:function JSON`: the entry point of every child process."""
    module, name = ref.split(":")
    result = getattr(import_module(module), name)(json.loads(arg))
    if result is not None:
        print(json.dumps(result))


def package_info() -> str:
    """Where the measured package lives and at which commit."""
    package = Path(import_module("langchain_openrouter_audio").__file__ or "").parent
    git = ["git", "-C", str(package.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", package.name], capture_output=True, text=True
    )
    commit = head.stdout.strip() or "no git commit"
    return f"`{package}` at {commit}" + (" + changes" if dirty.stdout else "")


def machine() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":")[1].strip() for x in info if "model name" in x), platform.machine())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "load average": round(os.getloadavg()[0], 1),
    }


def measure_side(arg: dict[str, Any]) -> dict[str, Any]:
    """In the client process of one tree: one module's tables and where its package is."""
    tables = import_module(f"benchmarks.{arg['module']}").measure(arg["ctx"])
    return {"package": package_info(), "tables": tables}


def servers(module: Any, ctx: dict[str, Any]) -> Any:
    """What the module's clients talk to, started in this process (if it needs any)."""
    if hasattr(module, "servers"):
        return module.servers(ctx)
    return contextlib.nullcontext(ctx)


def profile(case: str, ctx: dict[str, Any]) -> None:
    """Profile one case (a module's `PROFILES` entry) of this tree with pyinstrument."""
    from pyinstrument import Profiler

    modules = [import_module(f"benchmarks.{name}") for name in MODULES]
    cases = {c: m for m in modules for c in getattr(m, "PROFILES", {})}
    if case not in cases:
        sys.exit(f"no case {case!r}; cases: {', '.join(cases)}")
    module = cases[case]
    with servers(module, ctx) as ctx:
        run = module.PROFILES[case](ctx)
        profiler = Profiler(interval=0.0002)
        profiler.start()
        run()
        profiler.stop()
    print(profiler.output_text(unicode=False, color=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short replies, few repetitions")
    parser.add_argument("--only", action="append", choices=MODULES, help="run only this module")
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="also measure the package of another worktree, reported as LABEL",
    )
    parser.add_argument("--profile", metavar="CASE", help="profile one case instead")
    parser.add_argument("--clients", type=int, default=60, help="web_load: WebSocket clients")
    parser.add_argument("--turns", type=int, default=2, help="web_load: questions per client")
    parser.add_argument(
        "--remote",
        type=int,
        default=0,
        metavar="N",
        help="web_load: N voice workers in front of one langgraph dev instead",
    )
    parser.add_argument("--turn-model", help="turn_taking: smart-turn v3 .onnx file")
    parser.add_argument("--call", nargs=2, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if tree := os.environ.get("BENCH_TREE"):  # a child measuring another worktree
        sys.path.insert(0, tree)
    from benchmarks import harness

    if args.call:
        call(*args.call)
        return
    ctx = {k: getattr(args, k) for k in ("quick", "clients", "turns", "remote", "turn_model")}
    if args.profile:
        profile(args.profile, ctx)
        return
    started = time.perf_counter()
    trees: dict[str, str | None] = {"here": None}
    trees.update(t.split("=", 1) for t in args.tree)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "modules": {}}
    report = [", ".join(f"{k}: {v}" for k, v in results["machine"].items())]
    print(report[0] + "\n", flush=True)
    for name in args.only or MODULES:
        print(f"[{time.perf_counter() - started:6.1f} s] {name}", file=sys.stderr, flush=True)
        tables: dict[str, list[dict[str, Any]]] = {}
        with servers(import_module(f"benchmarks.{name}"), ctx) as module_ctx:
            for label, path in trees.items():
                arg = {"module": name, "ctx": {**module_ctx, "side": label}}
                out = harness.in_process("benchmarks.run:measure_side", arg, path)
                report.append(f"{name}, {label}: {out['package']}")
                # With several trees, each row says whose it is; a table holds them all.
                tree_column = {"tree": label} if len(trees) > 1 else {}
                for title, rows in out["tables"].items():
                    tables.setdefault(title, []).extend({**tree_column, **r} for r in rows)
        results["modules"][name] = tables
        for title, rows in tables.items():
            if rows:
                report.append(harness.markdown(title, rows))
                print(report[-1], flush=True)
    results["wall_s"] = time.perf_counter() - started
    # The end of the output: which package each tree measured.
    print("\n".join(line for line in report[1:] if not line.startswith("###")))
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2))
        args.out.with_suffix(".md").write_text("\n\n".join(report) + "\n")
