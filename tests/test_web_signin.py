"""Signing in to the dashboard: links, tokens, sessions, roles, CSRF; /docs offline."""

import pytest
from builders import sequence, write
from dashboard import HTMX, csrf_of, open_link, sign_in_link, signed_in
from serving import serving

PAGES = ("/sequences", "/funnels", "/analytics", "/leads", "/inbox", "/activity")


@pytest.fixture
def applied(run_store, project):
    write(project, "alpha.yaml", sequence("Alpha", funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    return project


@pytest.fixture
def client(applied, store_url):
    with serving(applied, store_url) as client:
        yield client


def test_a_visitor_without_a_session_is_sent_to_sign_in(client):
    for path in ("/", *PAGES, "/leads/1"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/signin?next=")
    refused = client.post("/sequences/alpha/toggle", follow_redirects=False)
    assert refused.status_code == 401 and "not signed in" in refused.text
    assert client.get("/analytics/stream", follow_redirects=False).status_code == 303


def test_the_link_signs_in_and_the_session_cookie_is_safe(client, run_store):
    link = sign_in_link(run_store)
    assert link.startswith("http://127.0.0.1:8080/signin#")
    answer = open_link(client, link)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "nurture_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/sequences")
    assert page.status_code == 200 and "Alpha" in page.text
    assert "coach" in page.text and "(editor)" in page.text
    assert link.partition("#")[2] not in page.text  # the link's code is never shown back
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_pasted_token_signs_in_and_a_wrong_one_is_refused(client, run_store):
    secret = run_store("tokens", "create", "viewer", "--scope", "dashboard").stdout.strip()
    api_only = run_store("tokens", "create", "api", "--scope", "write").stdout.strip()
    for wrong in ("nrt_wrong", api_only):
        page = client.get("/signin")
        nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
        refused = client.post("/signin", data={"nonce": nonce, "token": wrong})
        assert refused.status_code == 401 and "no dashboard scope" in refused.text
        assert wrong not in refused.text
    page = client.get("/signin")
    nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
    answer = client.post("/signin", data={"nonce": nonce, "token": secret}, follow_redirects=False)
    assert answer.status_code == 303
    assert "(viewer)" in client.get("/sequences").text


def test_a_forged_expired_or_revoked_link_is_refused(client, run_store):
    link = sign_in_link(run_store)
    forged = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert open_link(client, forged).status_code == 401
    assert open_link(client, "x#12.nonsense").status_code == 401
    assert run_store("tokens", "revoke", "coach").exit_code == 0
    refused = open_link(client, link)
    assert refused.status_code == 401 and "nurture dashboard link" in refused.text


def test_revoking_the_token_ends_its_sessions(client, run_store):
    signed_in(client, run_store)
    assert run_store("tokens", "revoke", "coach").exit_code == 0
    client.app.state.web.sessions.trusted.clear()  # what TRUST_SECONDS later does by itself
    assert client.get("/sequences", follow_redirects=False).status_code == 303


def test_the_sign_in_form_needs_its_nonce(client, run_store):
    link = sign_in_link(run_store)
    answer = client.post("/signin", data={"code": link.partition("#")[2], "nonce": "guess"})
    assert answer.status_code == 401 and "expired" in answer.text


def test_next_stays_on_this_site(client, run_store):
    link = sign_in_link(run_store)
    client.get("/signin?next=//evil.example.com/")
    page = client.get("/signin", params={"next": "https://evil.example.com"})
    assert 'name="next" value="/"' in page.text
    nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
    data = {"nonce": nonce, "code": link.partition("#")[2], "next": "//evil.example.com"}
    assert client.post("/signin", data=data, follow_redirects=False).headers["location"] == "/"


def test_every_post_needs_the_csrf_token(client, run_store, applied):
    csrf = signed_in(client, run_store)
    before = (applied / "sequences" / "alpha.yaml").read_text()
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        refused = client.post("/sequences/alpha/toggle", headers=HTMX | headers)
        assert refused.status_code == 403 and "CSRF" in refused.text
    refused = client.post("/sequences/alpha/toggle", data={"csrf": "wrong"})
    assert refused.status_code == 403
    assert (applied / "sequences" / "alpha.yaml").read_text() == before
    done = client.post("/sequences/alpha/toggle", headers=HTMX | {"X-CSRF-Token": csrf})
    assert done.status_code == 200 and "inactive" in done.text
    assert "active: false" in (applied / "sequences" / "alpha.yaml").read_text()


def test_a_viewer_sees_every_page_but_changes_nothing(client, run_store, applied):
    csrf = signed_in(client, run_store, name="assistant", scope="dashboard")
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert 'hx-post="/sequences/alpha/toggle"' not in page.text
    headers = HTMX | {"X-CSRF-Token": csrf}
    for path in ("/sequences/alpha/toggle", "/sequences/alpha/delete", "/inbox/tasks/1/done"):
        refused = client.post(path, headers=headers)
        assert refused.status_code == 403, path
        assert "may view the dashboard but not change it" in refused.text
        assert refused.headers["HX-Retarget"] == "#flash"
    assert "active: false" not in (applied / "sequences" / "alpha.yaml").read_text()


def test_signing_out_ends_the_session(client, run_store):
    csrf = signed_in(client, run_store)
    answer = client.post("/signout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/signin"
    assert client.get("/sequences", follow_redirects=False).status_code == 303


def test_docs_and_the_pages_load_nothing_from_elsewhere(client, run_store):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/vendor/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "htmx.min.js", "Sortable.min.js"):
        assert client.get(f"/static/vendor/{asset}").status_code == 200, asset
    signed_in(client, run_store)
    page = client.get("/sequences").text
    assert "http://" not in page.replace("http://127.0.0.1", "") and "https://" not in page
    assert csrf_of(page)


def test_dashboard_link_without_a_dashboard_token_says_how_to_make_one(run_store, applied):
    run_store("tokens", "create", "api", "--scope", "write")
    result = run_store("dashboard", "link")
    assert result.exit_code == 1
    assert "nurture tokens create coach --scope dashboard:edit" in result.stderr
    made = run_store("tokens", "create", "viewer", "--scope", "dashboard")
    assert made.exit_code == 0
    shown = run_store("dashboard", "link", "--url", "https://nurture.example.com/", "--json")
    assert shown.exit_code == 0
    assert '"link": "https://nurture.example.com/signin#' in shown.stdout
    assert '"role": "viewer"' in shown.stdout
