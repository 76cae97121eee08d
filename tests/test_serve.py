"""`nurture serve` as a user starts it: a real process on loopback, with worker processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from builders import sequence, step, write


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def post(url: str, path: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_serve_with_two_workers_ingests_and_stops_on_sigterm(run_store, project: Path, store_url):
    write(project, "welcome.yaml", sequence("Welcome", step("Hi"), funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    secret = run_store("tokens", "create", "form", "--scope", "ingest").stdout.strip()
    port = free_port()
    command = [sys.executable, "-m", "nurture", "--database-url", store_url, "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        cwd=project,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])},
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(url, server)["status"] == "ok"
        lead = {"funnel": "website", "name": "Ana", "email": "ana@example.com"}
        status, body = post(url, "/api/leads", lead, secret)
        assert status == 201 and body["sequence"] == "Welcome"
        assert post(url, "/api/leads", lead, "nrt_wrong")[0] == 401
    finally:
        server.send_signal(signal.SIGTERM)
        log = server.communicate(timeout=30)[1].decode()
    assert server.returncode == 0, log
    assert f"serving on http://127.0.0.1:{port} (docs at /docs, sequences read-only)" in log
