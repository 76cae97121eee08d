"""The code to compare against, in the same run: a revision checked out in a temp `git worktree`.

    with baseline("ccbc7be") as env:  # env runs `python -m nurture` as of that revision
        subprocess.run([sys.executable, "-m", "nurture", ...], env=env)

Its `nurture` package is put first on PYTHONPATH, so the same interpreter and dependencies
run the older code: only the code differs. Rounds alternate baseline and current code, so a
change in the machine's load falls on both alike.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = "ccbc7be"
"""The revision before the import, ingestion and backfill work (issues 13 and 14)."""


IDENTITY_OFF = {"NURTURE_LEADS__IDENTITY": '["external_id"]'}
"""This code with identity matching by external id only (no email or phone keys): the cost of
identity, measured in the same rounds (issue 16)."""


def codes(label: str, env: dict[str, str] | None) -> dict[str, dict[str, str] | None]:
    """The codes a bench compares, by label: this one, this one with identity off, the baseline."""
    found: dict[str, dict[str, str] | None] = {"this code": None}
    found["this code, identity off"] = os.environ | IDENTITY_OFF
    return found | ({f"baseline {label}": env} if env is not None else {})


@contextmanager
def baseline(revision: str | None) -> Iterator[dict[str, str] | None]:
    """The environment that runs `revision`'s nurture (None for no baseline); removed after."""
    if not revision:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="nurture-baseline-"))
    tree = folder / "tree"
    git = ["git", "-C", str(ROOT)]
    added = [*git, "worktree", "add", "--detach", str(tree), revision]
    subprocess.run(added, check=True, capture_output=True)
    try:
        yield os.environ | {"PYTHONPATH": str(tree)}
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def load_average() -> str:
    """The machine's load average (1, 5 and 15 minutes), as /proc/loadavg gives it."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
