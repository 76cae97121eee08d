"""The API while its store is down: every answer is a 503 that says the store is unavailable and
names nothing of it (host, database, user, path); the server's log has the detail."""

import logging

import pytest
from builders import sequence, step, write
from servers import free_port
from serving import serving, token

from nurture.store.db import Store, create_engine

LEAD = {"funnel": "website", "name": "Ana Ruiz", "email": "ana@example.com"}
SAID = "the store is unavailable: the server's log says why"


@pytest.fixture
def api(run_store, project, store_url):
    write(project, "welcome.yaml", sequence("Welcome", step("Hi"), funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    with serving(project, store_url) as client:
        client.ingest = token(run_store, "landing-page", "ingest")
        client.read = token(run_store, "dashboard", "read")
        yield client


def take_the_store_away(api, store_url: str, tmp_path) -> list[str]:
    """The server's store becomes unreachable, as when its database goes down; what it names."""
    if store_url.startswith("sqlite"):
        gone = f"sqlite:///{tmp_path}/vanished-dir/leads_db.db"
        names = ["vanished-dir", "leads_db", str(tmp_path)]
    else:
        gone = f"postgresql+psycopg://leads_owner@127.0.0.1:{free_port()}/leads_db"
        names = ["leads_owner", "127.0.0.1", "leads_db", "postgres"]
    context = api.app.state.context
    context.store = Store(gone, create_engine(gone))
    return names


def test_while_the_store_is_down_the_api_says_so_and_names_none_of_it(
    api, store_url, tmp_path, caplog
):
    names = take_the_store_away(api, store_url, tmp_path)
    caplog.set_level(logging.ERROR, logger="nurture.api")
    answers = {
        "lead": api.post("/api/leads", json=LEAD, headers=api.ingest),
        "sequences": api.get("/api/nurturing-sequences", headers=api.read),
        "stats": api.get("/api/nurturing-sequences/welcome/stats", headers=api.read),
        "healthz": api.get("/healthz"),
    }
    for what, answer in answers.items():
        assert answer.status_code == 503, (what, answer.text)
        assert answer.json()["message"] == SAID, what
        for name in names:
            assert name not in answer.text, (what, name)
    assert answers["healthz"].json()["status"] == "unavailable"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "leads_db" in logged  # the operator reads the reason in the server's log
