"""`nurture serve` as a user starts it: a real process on loopback, with worker processes."""

import json
import urllib.error
import urllib.request
from pathlib import Path

from builders import sequence, step, write
from serving import serve_process


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
    with serve_process(project, store_url, "--workers", "2") as served:
        assert served.health["status"] == "ok"
        lead = {"funnel": "website", "name": "Ana", "email": "ana@example.com"}
        status, body = post(served.url, "/api/leads", lead, secret)
        assert status == 201 and body["sequence"] == "Welcome"
        assert post(served.url, "/api/leads", lead, "nrt_wrong")[0] == 401
    assert served.process.returncode == 0, served.log
    assert f"serving on {served.url} (docs at /docs, sequences read-only)" in served.log
