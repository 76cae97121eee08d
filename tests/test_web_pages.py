"""The dashboard's pages as a coach uses them: what each shows, what its buttons change."""

import json
import re

import pytest
import yaml
from builders import sequence, step, write
from dashboard import HTMX, open_link, sign_in_link, signed_in
from serving import live, serving

ALPHA = """\
# Welcome for leads from the website.
name: Alpha   # shown to the coach
category: warm_lead
priority: 1
funnels:
  - website    # the main form
steps:
  - name: Hello   # first touch
    action_type: send_sms
    action_config:
      message: "Hi {{ lead.first_name }}!"
  - name: Call
    action_type: create_task
    action_config:
      title: "Call {{ lead.name }}"
    delay_days: 2
"""


@pytest.fixture
def project_with_leads(run_store, project):
    """Alpha (a commented file) and Beta on the website funnel, two leads, a step run."""
    write(project, "alpha.yaml", ALPHA)
    beta = sequence(
        "Beta",
        step("Welcome back"),
        category="follow-up",
        funnels=["website"],
        trigger_conditions={"lead_score": {"min": 50, "max": 100}},
    )
    write(project, "beta.yaml", beta)
    assert run_store("apply", "--yes").exit_code == 0
    for name, phone, score in (("Ana Silva", "+14155552671", 10), ("Bo Li", "+14155552672", 80)):
        email = f"{name.split()[0].lower()}@example.com"
        added = run_store(
            "leads", "add", "--funnel", "website", "--name", name, "--email", email,
            "--phone", phone, "--score", str(score),
        )  # fmt: skip
        assert added.exit_code == 0, added.output
    assert run_store("run", "--once").exit_code == 0
    return project


@pytest.fixture
def coach(project_with_leads, store_url, run_store):
    """A signed-in editor's client and its headers for htmx posts."""
    with serving(project_with_leads, store_url) as client:
        csrf = signed_in(client, run_store)
        client.headers.update({"X-CSRF-Token": csrf})
        yield client


def post(client, path, **data):
    return client.post(path, headers=HTMX, data=data)


def said(answer) -> str:
    """What the page's #flash then says (htmx gets it in the HX-Trigger header)."""
    return json.loads(answer.headers.get("HX-Trigger", "{}")).get("nurture:flash", "")


def test_all_sequences_show_the_figures_stats_shows(coach, run_store):
    page = coach.get("/sequences")
    assert page.status_code == 200
    stats = {
        row["sequence"]: row for row in json.loads(run_store("stats", "--json").stdout)["sequences"]
    }
    for name in ("Alpha", "Beta"):
        row = re.search(rf'<tr id="seq-{name.lower()}".*?</tr>', page.text, re.S).group(0)
        cells = re.findall(r'<td class="num">([^<]*)</td>', row)
        assert cells[:3] == [str(stats[name][k]) for k in ("assigned", "active", "completed")]
        assert "website" in row and "sequences/" in row
    assert "warm lead" in page.text and "follow up" in page.text


@pytest.mark.parametrize("spelling", ["follow_up", "Follow Up", "follow-up"])
def test_filter_by_category_takes_the_originals_spellings(coach, spelling):
    rows = coach.get("/sequences", params={"category": spelling}, headers={"HX-Target": "rows"})
    assert rows.status_code == 200 and "Beta" in rows.text and "Alpha" not in rows.text


def test_search_and_a_wrong_category(coach):
    found = coach.get("/sequences", params={"q": "alp"}, headers={"HX-Target": "rows"})
    assert "Alpha" in found.text and "Beta" not in found.text
    wrong = coach.get("/sequences", params={"category": "hot"})
    assert wrong.status_code == 422 and "is not a category" in wrong.text


def test_toggle_writes_the_file_keeping_its_comments(coach, project_with_leads, run_store):
    answer = post(coach, "/sequences/alpha/toggle")
    assert answer.status_code == 200 and "inactive" in answer.text
    text = (project_with_leads / "sequences" / "alpha.yaml").read_text()
    assert "active: false" in text and "# the main form" in text and "# first touch" in text
    assert json.loads(run_store("plan", "--json").stdout)["has_changes"] is False
    assert said(answer).startswith("applied: update Alpha (sequences/alpha.yaml)")


def test_duplicate_makes_an_inactive_copy_file(coach, project_with_leads):
    answer = post(coach, "/sequences/alpha/duplicate")
    assert answer.status_code == 200 and "Copy of Alpha" in answer.text
    copy = yaml.safe_load((project_with_leads / "sequences" / "copy-of-alpha.yaml").read_text())
    assert copy["name"] == "Copy of Alpha" and copy["active"] is False


def test_delete_shows_the_in_flight_impact_then_deletes(coach, project_with_leads):
    confirm = coach.get("/sequences/alpha/delete", headers=HTMX)
    assert confirm.status_code == 200
    assert "Stops 2 in-flight enrollments" in confirm.text  # Alpha (priority 1) took both leads
    assert "sequences/alpha.yaml" in confirm.text
    done = post(coach, "/sequences/alpha/delete")
    assert done.status_code == 200 and "stopped 2 in-flight enrollment" in said(done)
    assert not (project_with_leads / "sequences" / "alpha.yaml").exists()
    assert 'id="seq-alpha"' not in coach.get("/sequences").text


def test_a_sequence_in_the_store_alone_is_read_only_unless_read_write(
    project_with_leads, store_url, run_store
):
    (project_with_leads / "sequences" / "beta.yaml").unlink()  # Beta: in the store alone now
    with serving(project_with_leads, store_url) as client:
        client.headers["X-CSRF-Token"] = signed_in(client, run_store)
        refused = post(client, "/sequences/beta/toggle")
        assert refused.status_code == 409 and "read-only" in refused.text
    with serving(project_with_leads, store_url, sequences="read-write") as client:
        client.headers["X-CSRF-Token"] = signed_in(client, run_store, name="coach2")
        done = post(client, "/sequences/beta/toggle")
        assert done.status_code == 200 and "inactive" in done.text


def test_missing_things_are_404_pages_never_500(coach):
    for path in ("/leads/999", "/leads/abc", "/analytics?sequence=nope"):
        answer = coach.get(path)
        assert answer.status_code == 404, path
        assert "<html" in answer.text
    for path in ("/sequences/nope/toggle", "/leads/1/enrollments/999/pause", "/inbox/tasks/9/done"):
        assert post(coach, path).status_code == 404, path
    assert post(coach, "/leads/1/enrollments/1/fly").status_code in (404, 422)


def test_funnel_map_shows_the_order_the_typical_lead_and_gaps(coach):
    page = coach.get("/funnels")
    assert page.status_code == 200
    card = re.search(r'id="funnel-website".*?</section>', page.text, re.S).group(0)
    order = card[card.index("<ol") :]
    assert order.index("Alpha") < order.index("Beta")  # priority 1 before 0
    assert "A typical lead gets: <strong>Alpha</strong>" in card


def test_reordering_a_funnel_raises_priorities_in_the_files(coach, project_with_leads, run_store):
    answer = coach.post("/funnels/website/order", headers=HTMX, data={"item": ["beta", "alpha"]})
    assert answer.status_code == 200, answer.text
    beta = yaml.safe_load((project_with_leads / "sequences" / "beta.yaml").read_text())
    assert beta["priority"] == 2
    assert "# the main form" in (project_with_leads / "sequences" / "alpha.yaml").read_text()
    order = re.search(r'id="funnel-website".*?(<ol.*?</ol>)', answer.text, re.S).group(1)
    assert order.index("Beta") < order.index("Alpha")
    assert json.loads(run_store("plan", "--json").stdout)["has_changes"] is False


def test_bulk_assign_and_unassign(coach, project_with_leads):
    data = {"sequence": ["alpha", "beta"], "funnel": ["website"], "new_funnel": "webinar"}
    answer = coach.post("/funnels/assign", headers=HTMX, data=data)
    assert answer.status_code == 200 and 'id="funnel-webinar"' in answer.text
    alpha = yaml.safe_load((project_with_leads / "sequences" / "alpha.yaml").read_text())
    assert alpha["funnels"] == ["website", "webinar"]
    gone = coach.post(
        "/funnels/unassign", headers=HTMX, data={"sequence": "beta", "funnel": "webinar"}
    )
    assert gone.status_code == 200
    beta = yaml.safe_load((project_with_leads / "sequences" / "beta.yaml").read_text())
    assert beta["funnels"] == ["website"]
    nothing = coach.post("/funnels/assign", headers=HTMX, data={"sequence": "alpha"})
    assert nothing.status_code == 400 and "at least one sequence and one funnel" in nothing.text


def test_analytics_are_the_numbers_of_nurture_stats(coach, run_store):
    page = coach.get("/analytics", params={"sequence": "Alpha"})
    assert page.status_code == 200
    stats = json.loads(run_store("stats", "--json").stdout)
    for row in stats["sequences"]:
        shown = re.search(rf'<tr data-sequence="{row["sequence"]}">.*?</tr>', page.text, re.S)
        for key in ("assigned", "active", "completed", "converted", "stopped", "failed"):
            assert f'data-figure="{key}">{row[key]}<' in shown.group(0), key
    assert 'id="step-figures"' in page.text and "Hello" in page.text


def test_leads_search_and_a_leads_page(coach):
    found = coach.get("/leads", params={"q": "ana"}, headers={"HX-Target": "lead-rows"})
    assert "Ana Silva" in found.text and "Bo Li" not in found.text
    page = coach.get("/leads/1")
    assert page.status_code == 200
    assert "Ana Silva" in page.text and "Alpha" in page.text
    assert "Hi Ana!" in page.text  # the message it was sent, with its text
    assert "Next: <strong>Call</strong>" in page.text


def test_enrollment_buttons_check_the_enrollment_is_the_leads(coach):
    page = coach.get("/leads/1").text
    enrollment = re.search(r'id="enrollment-(\d+)"', page).group(1)
    other = post(coach, f"/leads/2/enrollments/{enrollment}/pause")
    assert other.status_code == 404 and f"lead 2 has no enrollment {enrollment}" in other.text
    paused = post(coach, f"/leads/1/enrollments/{enrollment}/pause")
    assert paused.status_code == 200 and said(paused) == f"enrollment {enrollment} paused"
    again = post(coach, f"/leads/1/enrollments/{enrollment}/pause")
    assert again.status_code == 409 and "is paused" in again.text
    resumed = post(coach, f"/leads/1/enrollments/{enrollment}/resume")
    assert resumed.status_code == 200
    stopped = post(coach, f"/leads/1/enrollments/{enrollment}/stop")
    assert stopped.status_code == 200 and '<span class="status">stopped</span>' in stopped.text


def test_inbox_shows_outbox_messages_and_a_task_is_done_in_one_click(coach, run_store):
    inbox = coach.get("/inbox")
    assert inbox.status_code == 200 and "Hi Ana!" in inbox.text and "Nothing to do" in inbox.text
    assert run_store("run", "--once", "--now", "2099-01-01T12:00:00Z").exit_code == 0
    inbox = coach.get("/inbox").text
    task = re.search(r'id="task-(\d+)"', inbox).group(1)
    assert "Call Ana Silva" in inbox
    done = post(coach, f"/inbox/tasks/{task}/done")
    assert done.status_code == 200 and said(done) == "done: Call Ana Silva"
    listed = json.loads(run_store("tasks", "list", "--json").stdout)
    assert all(row["id"] != int(task) for row in listed)


def test_inbox_shows_the_replies_of_leads_newest_first(coach, run_store):
    assert "No reply yet." in coach.get("/inbox").text
    for lead, text in (("ana@example.com", "Can we talk?"), ("bo@example.com", "Later <b>pls</b>")):
        assert run_store("leads", "inbound", lead, "-c", "sms", "--text", text).exit_code == 0
    page = coach.get("/inbox").text
    replies = page[page.index('id="replies"') : page.index("Tasks to do")]
    assert replies.index("Bo Li") < replies.index("Ana Silva")  # newest first
    assert "Later &lt;b&gt;pls&lt;/b&gt;" in replies and "Can we talk?" in replies
    assert "sms" in replies
    assert "No reply yet." not in page
    stream = re.search(r'sse-connect="/inbox/stream\?replies=(\d+)&amp;notifications=(\d+)"', page)
    assert stream.groups() == ("2", "2")  # what the page shows: the stream sends what follows


def test_the_inbox_stream_sends_each_new_reply_and_notification(
    project_with_leads, store_url, run_store
):
    """Through a real server: the stream after the reply and the note shown sends the next."""
    import httpx2 as httpx

    assert run_store("leads", "inbound", "ana@example.com", "--text", "First").exit_code == 0
    with live(project_with_leads, store_url) as url, httpx.Client(base_url=url) as client:
        assert open_link(client, sign_in_link(run_store)).status_code == 303
        refused = client.get("/inbox/stream", params={"replies": "-1"})
        assert refused.status_code == 422 and "replies" in refused.text
        shown = {"replies": 1, "notifications": 1}
        with client.stream("GET", "/inbox/stream", params=shown, timeout=30) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            wrote = run_store("leads", "inbound", "bo@example.com", "-c", "sms", "--text", "Yes!")
            assert wrote.exit_code == 0
            events = sent_events(answer.iter_lines(), 2)
    assert list(events) == ["replies", "notifications"]
    assert "Bo Li" in events["replies"] and "Yes!" in events["replies"]
    assert "Bo Li (bo@example.com, +14155552672) replied by sms: “Yes!”" in events["notifications"]
    assert "First" not in events["replies"] + events["notifications"]


def test_the_activity_stream_sends_the_executions_that_follow(
    project_with_leads, store_url, run_store
):
    import httpx2 as httpx

    with live(project_with_leads, store_url) as url, httpx.Client(base_url=url) as client:
        assert open_link(client, sign_in_link(run_store)).status_code == 303
        after = re.search(r"/activity/stream\?after=(\d+)", client.get("/activity").text).group(1)
        with client.stream("GET", "/activity/stream", params={"after": after}) as answer:
            ran = run_store("run", "--once", "--now", "2099-01-01T12:00:00Z")  # the calls
            assert ran.exit_code == 0
            events = sent_events(answer.iter_lines(), 1)
    rows = re.findall(r"<tr><td>.*?</tr>", events["executions"])
    assert len(rows) == 2 and all("call" in row and "create_task" in row for row in rows)
    assert {"Bo Li", "Ana Silva"} == {re.search(r'">([^<]+)</a>', row).group(1) for row in rows}


def sent_events(lines, count: int) -> dict[str, str]:
    """The first `count` server-sent events with a name (pings have none): name -> data."""
    events: dict[str, str] = {}
    name, data = "", []
    for line in lines:
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].removeprefix(" "))
        elif not line and name:
            events[name], name, data = "\n".join(data), "", []
            if len(events) == count:
                break
    return events


def test_activity_shows_what_was_applied_and_the_executions(coach):
    page = coach.get("/activity")
    assert page.status_code == 200
    assert "created" in page.text and "sequences/alpha.yaml" in page.text
    assert "hello" in page.text and "sent" in page.text


def test_leads_are_found_by_id_email_or_the_start_of_a_name(coach):
    def shown(q):
        rows = coach.get("/leads", params={"q": q}, headers={"HX-Target": "lead-rows"})
        assert rows.status_code == 200, q
        return re.findall(r'<a href="/leads/\d+">([^<]+)</a>', rows.text)

    assert shown("") == ["Bo Li", "Ana Silva"]  # newest first
    assert shown("ANA") == ["Ana Silva"] == shown("ana@example.com") == shown("1")
    assert shown("bo@") == ["Bo Li"]
    assert shown("silva") == [] and shown("\x00") == [] and shown("%") == []


def test_activity_says_who_changed_what_on_the_dashboard(coach):
    post(coach, "/sequences/beta/toggle")
    post(coach, "/leads/1/enrollments/1/pause")
    page = coach.get("/activity").text
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", page)
    assert rows[0] == ("coach", "pause: enrollment 1 paused", "lead 1")
    assert rows[1][:2] == ("coach", "toggle: applied: update Beta (sequences/beta.yaml)")
    assert ("nurture apply", "created", "Alpha") in rows


def test_a_form_posted_without_javascript_goes_back_to_its_page(coach, project_with_leads):
    csrf = coach.headers["X-CSRF-Token"]
    referer = {"Referer": f"{coach.base_url}/sequences?q=alp", "X-CSRF-Token": ""}
    answer = coach.post(
        "/sequences/alpha/toggle", data={"csrf": csrf}, headers=referer, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/sequences?q=alp"
    assert "active: false" in (project_with_leads / "sequences" / "alpha.yaml").read_text()
    elsewhere = {"Referer": "https://evil.example.com/x", "X-CSRF-Token": ""}
    answer = coach.post(
        "/sequences/alpha/toggle", data={"csrf": csrf}, headers=elsewhere, follow_redirects=False
    )
    assert answer.headers["location"] == "/"


def test_a_live_stream_of_a_missing_sequence_or_a_bad_date_is_refused_first(coach):
    assert coach.get("/analytics/stream", params={"sequence": "nope"}).status_code == 404
    bad = coach.get("/analytics/stream", params={"since": "yesterday-ish"})
    assert bad.status_code == 400 and "<html" in bad.text
