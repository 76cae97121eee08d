"""Start-up of the `nurture` command, side by side with a baseline revision in the same run.

    python bench/cli.py [--baseline ccbc7be] [--runs 11]

The baseline is checked out with `git worktree add` into a temp directory (removed afterwards,
also on failure) and run with this venv's python, PYTHONPATH pointing at it; this tree runs
the same way from its own directory; both have their bytecode compiled first, as an installed
package has. Runs alternate between the two, so both see the same load. Each figure is the
median of `--runs` processes, start to exit: wall time, and the CPU time (user + system) the
process used, which a loaded machine disturbs less:

- `--version`, `--help`, `leads --help`;
- `validate` of a project of five sequences (this repository's examples);
- `plan` of them against a fresh SQLite store (a new project each run: no nurture.db yet);
- `plan` of them against a store they were applied to (no changes).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "leads --help": ["leads", "--help"],
    "validate (5 sequences)": ["validate"],
    "plan (5 sequences, fresh store)": ["plan"],
    "plan (5 sequences, applied store)": ["plan"],
}


@contextmanager
def baseline_tree(revision: str) -> Iterator[Path]:
    """The code at `revision` in a temp git worktree, removed however the block ends."""
    scratch = Path(tempfile.mkdtemp(prefix="nurture-baseline-"))
    tree = scratch / "tree"
    git = ["git", "-C", str(ROOT)]
    subprocess.run(
        [*git, "worktree", "add", "--detach", str(tree), revision], check=True, capture_output=True
    )
    try:
        yield tree
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


def compiled(tree: Path) -> Path:
    """The tree with its bytecode written, as an installed package has it (pip compiles it)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "nurture")], check=True)
    return tree


def new_project(parent: Path, name: str) -> Path:
    """A project with the five example sequences and no store yet."""
    project = parent / name
    (project / "sequences").mkdir(parents=True)
    (project / "nurture.toml").write_text('sequences_dir = "sequences"\ntimezone = "UTC"\n')
    for path in sorted((ROOT / "sequences").glob("*.yaml")):
        shutil.copy(path, project / "sequences")
    return project


class Timing(NamedTuple):
    wall: float
    cpu: float  # user + system seconds of the process: what load on a shared machine moves less


def run(tree: Path, args: list[str], cwd: Path) -> Timing:
    """How long `nurture ARGS` takes with the code of `tree`; a failure stops the benchmark."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    drop = ("NURTURE_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in env.items() if not k.startswith(drop)}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "nurture", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"`nurture {' '.join(args)}` failed in {tree}:\n{stderr}")
    return Timing(seconds, usage.ru_utime + usage.ru_stime)


def measure(trees: dict[str, Path], scratch: Path, runs: int) -> dict[str, dict[str, Timing]]:
    """The median times of each command for each tree, runs alternating between the trees."""
    applied = {}
    for label, tree in trees.items():
        applied[label] = new_project(scratch, f"applied-{label}")
        run(tree, ["apply", "--yes"], applied[label])
    times: dict[str, dict[str, list[Timing]]] = {c: {t: [] for t in trees} for c in COMMANDS}
    for index in range(runs):
        for command, args in COMMANDS.items():
            for label, tree in trees.items():
                cwd = applied[label]
                if "fresh" in command:
                    cwd = new_project(scratch, f"fresh-{label}-{index}")
                times[command][label].append(run(tree, args, cwd))
    return {c: {t: _median(s) for t, s in by.items()} for c, by in times.items()}


def _median(timings: list[Timing]) -> Timing:
    return Timing(*(statistics.median(values) for values in zip(*timings, strict=True)))


def table(medians: dict[str, dict[str, Timing]], baseline: str) -> str:
    lines = [
        f"| command | wall: baseline ({baseline}) | wall: this tree | speed-up "
        "| CPU: baseline | CPU: this tree |",
        "|---|---|---|---|---|---|",
    ]
    for command, by in medians.items():
        before, after = by["baseline"], by["this tree"]
        lines.append(
            f"| `{command}` | {before.wall:.3f} s | {after.wall:.3f} s "
            f"| {before.wall / after.wall:.1f}x | {before.cpu:.3f} s | {after.cpu:.3f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="ccbc7be", help="The revision to compare with.")
    parser.add_argument("--runs", type=int, default=11, help="Runs of each command per tree.")
    args = parser.parse_args()
    load = os.getloadavg()
    with baseline_tree(args.baseline) as tree, tempfile.TemporaryDirectory() as scratch:
        trees = {"baseline": compiled(tree), "this tree": compiled(ROOT)}
        medians = measure(trees, Path(scratch), args.runs)
    after = os.getloadavg()
    print(table(medians, args.baseline))
    print(
        f"\nMedian of {args.runs} runs each; {os.cpu_count()} CPUs; load average (1 min) "
        f"{load[0]:.2f} before, {after[0]:.2f} after."
    )


if __name__ == "__main__":
    main()
