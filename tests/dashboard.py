"""The coach dashboard in tests: a token and its sign-in link made by the CLI, a browser's visit."""

import re
from typing import Any

from fastapi.testclient import TestClient

HTMX = {"HX-Request": "true"}


def sign_in_link(run_store: Any, name: str = "coach", scope: str = "dashboard:edit") -> str:
    """`nurture tokens create NAME --scope SCOPE`, then `nurture dashboard link --token NAME`."""
    created = run_store("tokens", "create", name, "--scope", scope)
    assert created.exit_code == 0, created.output
    link = run_store("dashboard", "link", "--token", name)
    assert link.exit_code == 0, link.output
    return link.stdout.strip()


def open_link(client: TestClient, link: str) -> Any:
    """What the sign-in page's script does with a link: post the code after `#` with the form."""
    code = link.partition("#")[2]
    page = client.get("/signin")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce, page.text
    return client.post(
        "/signin", data={"nonce": nonce.group(1), "code": code}, follow_redirects=False
    )


def signed_in(client: TestClient, run_store: Any, **token: str) -> str:
    """Sign the client in; the session's CSRF token (what every form of the pages carries)."""
    answer = open_link(client, sign_in_link(run_store, **token))
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/sequences").text)


def csrf_of(page: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', page)
    assert found, page
    return found.group(1)
