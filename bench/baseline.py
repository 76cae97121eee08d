"""An earlier revision of nurture to run side by side with this one in the same bench run.

    with baseline.tree("ccbc7be") as tree:
        subprocess.run(baseline.command(tree, "run", "--once"), env=baseline.env(tree))

The revision is checked out into a temporary git worktree (removed afterwards, also when the
bench fails) and run by this venv's Python with that tree first on PYTHONPATH: no install.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REVISION = "ccbc7be"
"""The code before session 5's speed work (the threaded send path, the eager CLI)."""


@contextmanager
def tree(revision: str = REVISION) -> Iterator[Path]:
    """A temporary checkout of `revision`."""
    folder = Path(tempfile.mkdtemp(prefix="nurture-baseline-"))
    checkout = folder / "tree"
    git = ["git", "-C", str(ROOT)]
    add = [*git, "worktree", "add", "--detach", str(checkout), revision]
    subprocess.run(add, check=True, capture_output=True)
    try:
        yield checkout
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(checkout)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def env(checkout: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that runs `checkout`'s nurture instead of this one."""
    environment = dict(os.environ if base is None else base)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(checkout), *filter(None, [environment.get("PYTHONPATH")])]
    )
    return environment
