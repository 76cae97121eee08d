"""schemathesis against /openapi.json of a running `nurture serve`: no 5xx, no answer off-schema."""

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files

import pytest
import schemathesis
import uvicorn
from builders import SEED_WARM_LEAD, write
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from nurture.api.app import create_app
from nurture.leads.ingest import ingest
from nurture.leads.records import LeadInput, LeadRules
from nurture.project.layout import Project
from nurture.project.sync import apply_changes, plan_project
from nurture.settings import load_settings
from nurture.store.db import open_store
from nurture.store.tokens import create_token

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
TOKEN: dict[str, str] = {}
FOLLOW_UP = (files("nurture.project.examples") / "consultation-follow-up.yaml").read_text()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real server (read-write, SQLite) on a free loopback port, with one sequence and lead."""
    project = tmp_path_factory.mktemp("served")
    twilio = f'[twilio]\naccount_sid = "AC{"1" * 32}"\nsms_from = "+12025550100"\n'
    (project / "nurture.toml").write_text('[api]\nsequences = "read-write"\n' + twilio)
    secrets = ("NURTURE_UNSUBSCRIBE__SECRET=fuzz-secret", "NURTURE_TWILIO__AUTH_TOKEN=fuzz-token")
    secrets += ("NURTURE_INBOUND_EMAIL__SECRET=fuzz-inbound-email-secret",)
    (project / ".env").write_text("\n".join(secrets) + "\n")
    (project / "sequences").mkdir()
    write(project, "warm.yaml", SEED_WARM_LEAD.replace("steps:", "funnels: [website]\nsteps:"))
    write(project, "follow-up.yaml", FOLLOW_UP)  # a send window and an appointment `at`: times
    app_settings, now = load_settings(project), datetime.now(UTC)
    with open_store(app_settings.database) as store, store.session(immediate=True) as session:
        apply_changes(session, plan_project(session, Project.from_settings(app_settings)), now)
        ingest(session, LeadInput(name="Ana", external_id="crm-17"), "website", now, LeadRules())
        TOKEN["Authorization"] = "Bearer " + create_token(session, "fuzz", ["write", "ingest"], now)
    TOKEN["X-Nurture-Token"] = "fuzz-inbound-email-secret"  # the inbound email webhook's
    server = uvicorn.Server(
        uvicorn.Config(create_app(app_settings), port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_every_endpoint_keeps_to_its_schema(api_schema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 17  # every route is in the document
    for operation in operations:  # the documented examples, then valid and invalid data
        for strategy in operation.get_strategies_from_examples():
            fuzz(strategy)
        fuzz(operation.as_strategy(GenerationMode.POSITIVE))
        with contextlib.suppress(Unsatisfiable):  # no parameters or body: nothing to break
            fuzz(operation.as_strategy(GenerationMode.NEGATIVE))


def fuzz(strategy) -> None:
    @given(case=strategy)
    @settings(
        max_examples=4,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def examples(case) -> None:
        case.call_and_validate(headers=TOKEN, checks=CHECKS)

    examples()
