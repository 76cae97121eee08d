"""The engine's CPU per step in one process: `drain` of N due SMS steps (outbox channel),
each scheduling its enrollment's next step.

    python bench/drain.py [--steps 30000] [--stores sqlite postgres] [--rounds 2]
                          [--baseline REV] [--profile]

No daemon and no process start-up: each round is a child process that enrolls N single-step
SMS enrollments on a fresh store (a temp SQLite file, or a new schema on the Postgres server of
--postgres or NURTURE_TEST_DATABASE_URL) and times `nurture.engine.dispatch.drain` over them
with the outbox channel: the CPU of this process (user + system; on SQLite the store's own
work is in it) and of its Postgres backends (read from /proc, so the server must be local).
With --baseline the same child runs that revision's code too (a temp git worktree first on
PYTHONPATH, bench/baseline.py), alternating with this code round after round; with --ceiling
the raw-SQL ceiling of bench/ceiling.py on the same N steps each round. --profile
prints cProfile's top functions (by own time) of one run of this code instead.
"""

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # bench/baseline.py, bench/engine.py
from baseline import baseline, load_average  # noqa: E402
from engine import NEXT_STEP, ceiling, fresh_store, project_with, remove_projects, server_cpu  # noqa: E402


def child(url: str, steps: int, profile: argparse.Namespace | None) -> dict:
    """In this process: enroll `steps` due steps and drain them; CPU seconds and the steps run."""
    from nurture.channels.factory import channels_for
    from nurture.engine.config import EngineConfig
    from nurture.engine.dispatch import drain
    from nurture.store.db import open_store
    from nurture.testing import enroll_many

    # the backends are read through a store of their own (server_cpu skips its own connection)
    with open_store(url) as store, open_store(url) as watcher:
        now = datetime.now(UTC)
        enroll_many(store, steps, now)
        channels, config = channels_for("outbox", store), EngineConfig()
        server_before = server_cpu(watcher)
        profiler = cProfile.Profile() if profile is not None else None
        started, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        ran = drain(store, now, config, channels)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - started, time.perf_counter() - wall
        server_after = server_cpu(watcher)
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats(profile.sort)
        stats.print_stats(profile.top)
        if profile.callers:
            stats.print_callers(profile.callers)
    server = sum(after - server_before.get(pid, 0) for pid, after in server_after.items())
    return {"steps": ran, "cpu_s": cpu, "server_s": server, "wall_s": wall}


def one_run(
    kind: str, server: str | None, steps: int, env: dict | None, profile: list[str]
) -> dict:
    """A child process (of `env`'s code) draining `steps` on a fresh store."""
    with fresh_store(kind, server) as url:
        project_with(url, NEXT_STEP, env)
        command = [sys.executable, __file__, "--child", url, "--steps", str(steps)]
        command += profile
        out = subprocess.run(command, env=env, check=True, capture_output=not profile, text=True)
        if profile:
            return {}
        got = json.loads(out.stdout)
    assert got["steps"] == steps, f"{got['steps']} of {steps} steps ran"
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--postgres", default=os.environ.get("NURTURE_TEST_DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", default="", help="a revision run in the same rounds")
    parser.add_argument("--ceiling", action="store_true", help="bench/ceiling.py each round too")
    parser.add_argument("--profile", action="store_true", help="cProfile one run of this code")
    parser.add_argument("--sort", default="tottime", help="--profile: pstats' order")
    parser.add_argument("--top", type=int, default=45, help="--profile: functions shown")
    parser.add_argument("--callers", default="", help="--profile: who calls these (a regex)")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        json.dump(child(args.child, args.steps, args if args.profile else None), sys.stdout)
        return
    stores = [kind for kind in args.stores if kind == "sqlite" or args.postgres]
    try:
        if args.profile:
            for kind in stores:
                print(f"## {kind}", file=sys.stderr, flush=True)
                shown = ["--profile", "--sort", args.sort, "--top", str(args.top)]
                shown += ["--callers", args.callers] if args.callers else []
                one_run(kind, args.postgres, args.steps, None, profile=shown)
            return
        print("| store | code | round | CPU/step: this process | + Postgres | steps/s | load |")
        print("|---|---|---|---|---|---|---|")
        with baseline(args.baseline) as env:
            codes = {"this code": None} | ({f"{args.baseline}": env} if env else {})
            for kind in stores:
                for number in range(1, args.rounds + 1):
                    for label, code in codes.items():
                        got = one_run(kind, args.postgres, args.steps, code, profile=[])
                        print(line(kind, label, number, got, args.steps), flush=True)
                    if args.ceiling:
                        with fresh_store(kind, args.postgres) as url:
                            got = ceiling(url, args.steps, 1)
                        got["wall_s"] = args.steps / got["steps_per_s"]
                        print(line(kind, "raw-SQL ceiling", number, got, args.steps), flush=True)
    finally:
        remove_projects()


def line(kind: str, label: str, number: int, got: dict, steps: int) -> str:
    own, pg = (got[key] / steps * 1e6 for key in ("cpu_s", "server_s"))
    return (f"| {kind} | {label} | {number} | {own:.0f} µs | {pg:.0f} µs | "
            f"{steps / got['wall_s']:,.0f} | {load_average()} |")  # fmt: skip


if __name__ == "__main__":
    main()
