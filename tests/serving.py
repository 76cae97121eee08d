"""The HTTP API in tests: the real app on a temp project's store, and tokens made by the CLI."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from servers import free_port

from nurture.api.app import create_app
from nurture.settings import load_settings

Run = Callable[..., Any]


@contextmanager
def serving(project: Path, store_url: str, **api: Any) -> Iterator[TestClient]:
    """A client of `nurture serve` for the project (api settings such as sequences="read-write")."""
    settings = load_settings(project, database_url=store_url)
    settings.api = settings.api.model_copy(update=api)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def token(run_store: Run, name: str, *scopes: str) -> dict[str, str]:
    """`nurture tokens create NAME --scope ...`: the Authorization header of the printed token."""
    args = [arg for scope in scopes for arg in ("--scope", scope)]
    result = run_store("tokens", "create", name, *args)
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.stdout.strip()}"}


@contextmanager
def live(project: Path, store_url: str) -> Iterator[str]:
    """`nurture serve`'s app on a real uvicorn server on a free loopback port; its base URL."""
    import threading
    import time

    import uvicorn

    settings = load_settings(project, database_url=store_url)
    config = uvicorn.Config(create_app(settings), port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def nurture_env() -> dict[str, str]:
    """The environment of a `nurture` subprocess: this checkout's package first."""
    return os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])}


def wait_healthy(url: str, server: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, "nurture serve exited"
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
                return json.load(answer)
        except OSError:
            time.sleep(0.1)
    raise AssertionError("nurture serve did not answer /healthz within 30 s")


@dataclass
class Served:
    """A `nurture serve` process: its base URL and first health answer; once it has stopped,
    its log (standard error) and exit code."""

    url: str
    process: subprocess.Popen
    health: dict = field(default_factory=dict)
    log: str = ""


@contextmanager
def serve_process(project: Path, store_url: str, *options: str) -> Iterator[Served]:
    """`nurture serve` as a user starts it, on a free loopback port, until the block ends
    (then SIGTERM, and its log read)."""
    port = free_port()
    command = [sys.executable, "-m", "nurture", "--database-url", store_url, "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), *options],
        cwd=project,
        env=nurture_env(),
        stderr=subprocess.PIPE,
    )
    served = Served(f"http://127.0.0.1:{port}", server)
    try:
        served.health = wait_healthy(served.url, server)
        yield served
    finally:
        server.send_signal(signal.SIGTERM)
        served.log = server.communicate(timeout=30)[1].decode()
