"""Run the benchmarks: how much the client adds to what any client must do, and how fast the
voice loop's parts are.

    python -m benchmarks                     # every module (or: python benchmarks/run.py)
    python -m benchmarks --quick             # shorter replies, fewer repetitions
    python -m benchmarks --only streaming --tree old=/tmp/old   # two trees side by side
    python -m benchmarks --profile sessions  # profile one case of this tree
    python -m benchmarks --out /tmp/bench    # also /tmp/bench.json and /tmp/bench.md

Tables go to stdout as markdown; files are written only where `--out` says.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # `python benchmarks/run.py`: import `benchmarks` from the repository
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import contextlib
import json
import os
import time
from importlib import import_module
from typing import Any

# What is measured, in the order it runs. A module needs `measure(ctx) -> {title: rows}`;
# it may add `servers(ctx)` (a context manager in the parent) and `PROFILES`.
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


def measure_side(arg: dict[str, Any]) -> dict[str, Any]:
    """In the client process of one tree: one module's tables and where its package is."""
    from benchmarks.harness import package_info

    tables = import_module(f"benchmarks.{arg['module']}").measure(arg["ctx"])
    return {"package": package_info(), "tables": tables}


def profile(case: str, ctx: dict[str, Any], use_pyinstrument: bool) -> None:
    """Profile one case in this process: shares of time by where the code lives."""
    import cProfile
    import pstats

    found = [m for m in MODULES if case in getattr(_module(m), "PROFILES", {})]
    if not found:
        cases = [c for m in MODULES for c in getattr(_module(m), "PROFILES", {})]
        sys.exit(f"no case {case!r}; cases: {', '.join(cases)}")
    module = _module(found[0])
    with _servers(module, ctx) as ctx:
        run = module.PROFILES[case](ctx)
        if use_pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
            profiler.start()
            run()
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False))
            return
        cprofile = cProfile.Profile()
        cprofile.runcall(run)
    stats = pstats.Stats(cprofile)
    groups: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{file}:{func}"
        key = next((k for k, marks in _GROUPS.items() if any(m in where for m in marks)), None)
        key = key or ("other: " + (Path(file).name if file != "~" else func))
        if key in ("ours", "langchain_core"):
            key += ": " + Path(file).name
        groups[key] = groups.get(key, 0.0) + tt
    total = sum(groups.values())
    print(f"### cProfile, {case}: {total:.2f} s of own time\n\n| where | share |\n|---|---|")
    for key, tt in sorted(groups.items(), key=lambda kv: -kv[1])[:20]:
        print(f"| {key} | {tt / total * 100:.1f} % |")
    print()
    stats.sort_stats("tottime").print_stats(25)


_GROUPS = {
    "ours": ["langchain_openrouter_audio"],
    "langchain_core": ["langchain_core"],
    "pydantic": ["pydantic"],
    "httpx/httpcore/h11/anyio": ["httpx", "httpcore", "h11", "anyio"],
    "asyncio": ["asyncio", "select"],
    "json": ["json"],
    "base64": ["base64", "a2b_base64"],
}


def _module(name: str) -> Any:
    return import_module(f"benchmarks.{name}")


def _servers(module: Any, ctx: dict[str, Any]) -> Any:
    return module.servers(ctx) if hasattr(module, "servers") else contextlib.nullcontext(ctx)


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
    parser.add_argument("--pyinstrument", action="store_true", help="with --profile")
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
        harness.call(*args.call)
        return
    ctx = {"quick": args.quick, "clients": args.clients, "turns": args.turns, "remote": args.remote}
    ctx["turn_model"] = args.turn_model
    if args.profile:
        profile(args.profile, ctx, args.pyinstrument)
        return
    started = time.perf_counter()
    sides: dict[str, str | None] = {"here": None, **dict(t.split("=", 1) for t in args.tree)}
    results: dict[str, Any] = {"machine": harness.machine(), "quick": args.quick, "modules": {}}
    report = [", ".join(f"{k}: {v}" for k, v in results["machine"].items())]
    print(report[0] + "\n", flush=True)
    for name in args.only or MODULES:
        print(f"[{time.perf_counter() - started:6.1f} s] {name}", file=sys.stderr, flush=True)
        merged: dict[str, list[dict[str, Any]]] = {}
        with _servers(_module(name), dict(ctx)) as module_ctx:
            for label, tree in sides.items():
                arg = {"module": name, "ctx": {**module_ctx, "side": label}}
                out = harness.in_process("benchmarks.run:measure_side", arg, tree)
                report.append(f"{name}, {label}: {out['package']}")
                for title, rows in out["tables"].items():
                    side = [{"tree": label} if len(sides) > 1 else {}]
                    merged.setdefault(title, []).extend({**side[0], **r} for r in rows)
        results["modules"][name] = merged
        for title, rows in merged.items():
            if not rows:
                continue
            report.append(harness.markdown(title, rows))
            print(report[-1], flush=True)
    results["wall_s"] = time.perf_counter() - started
    print("\n".join(line for line in report[1:] if not line.startswith("###")))
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2))
        args.out.with_suffix(".md").write_text("\n\n".join(report) + "\n")


if __name__ == "__main__":
    main()
