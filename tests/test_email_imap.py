"""Leads' answers read from a real IMAP mailbox (Dovecot on loopback): `nurture run --once` and
the daemon take the unseen emails, each recorded once and then marked seen, and the coach's
note arrives by email at the local SMTP server (issue 16)."""

import imaplib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import free_port
from test_email_replies import ANSWER, mailed, reply, shown  # noqa: F401 - the fixture

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "replies", "imap-password-42"
CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Imap:
    port: int

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        client.select("INBOX")
        return client

    def deliver(self, message: bytes) -> None:
        """The mail server's part: the message lands in the mailbox, unseen."""
        client = self.client()
        try:
            assert client.append("INBOX", None, None, message)[0] == "OK"
        finally:
            client.logout()

    def unseen(self) -> list[bytes]:
        client = self.client()
        try:
            return client.uid("SEARCH", "UNSEEN")[1][0].split()
        finally:
            client.logout()


@pytest.fixture
def imap() -> Iterator[Imap]:
    """Dovecot serving one mailbox (user `replies`) on a free loopback port."""
    if not Path(DOVECOT).exists():
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("this Dovecot configuration runs as root (its mail user is `dovecot`)")
    root = Path(tempfile.mkdtemp(prefix="dovecot-", dir="/tmp"))  # short: its unix sockets
    root.chmod(0o755)
    (root / "mail").mkdir(mode=0o777)
    (root / "mail").chmod(0o777)
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = free_port()
    (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port))
    server = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                Imap(port).client().logout()
                break
            except OSError:
                assert server.poll() is None, (root / "dovecot.log").read_text()
                assert time.monotonic() < deadline, "Dovecot did not answer within 30 s"
                time.sleep(0.1)
        yield Imap(port)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def use_mailbox(project: Path, imap: Imap, monkeypatch, password: str = PASSWORD) -> None:
    monkeypatch.setenv("NURTURE_INBOUND_EMAIL__IMAP__PASSWORD", password)
    toml = project / "nurture.toml"
    toml.write_text(
        toml.read_text() + f'[inbound_email.imap]\nhost = "127.0.0.1"\nport = {imap.port}\n'
        f'security = "none"\nusername = "{USER}"\npoll = 1\n'
    )


def test_run_once_reads_the_mailbox_before_the_steps_and_marks_each_email_seen(
    mailed,  # noqa: F811 - the fixture
    imap,
    run_store,
    project,
    monkeypatch,
):
    use_mailbox(project, imap, monkeypatch)
    welcome = mailed.messages[0]["Message-ID"]
    imap.deliver(reply(ANSWER, welcome))
    imap.deliver(reply("Away until Monday", welcome, message_id="<away@x>",
                       headers="X-Autoreply: yes\n"))  # fmt: skip
    ran = run_store("run", "--once", "--channel", "live")
    assert ran.exit_code == 0, ran.output
    assert "read 2 emails from the mailbox: 1 auto, 1 reply" in ran.stderr
    assert imap.unseen() == []
    note = mailed.messages[1]  # told in the same run
    assert note["Subject"] == "Sam Carter replied (email)"
    assert "“Tuesday at 10 works for me.\nSee you then!”" in note.get_body(("plain",)).get_content()
    lead = shown(run_store)
    assert lead["enrollments"][0]["status"] == "stopped" and len(lead["replies"]) == 1
    imap.deliver(reply(ANSWER, welcome))  # the same email again (a second copy delivered)
    again = run_store("run", "--once", "--channel", "live")
    assert "read 1 email from the mailbox: 1 repeat" in again.stderr
    assert len(mailed.messages) == 2 and imap.unseen() == []


def test_a_mailbox_refusing_the_login_is_a_warning_and_the_run_goes_on(
    mailed,  # noqa: F811 - the fixture
    imap,
    run_store,
    project,
    monkeypatch,
):
    use_mailbox(project, imap, monkeypatch, password="not-the-password")
    imap.deliver(reply("Hello?", mailed.messages[0]["Message-ID"]))
    ran = run_store("run", "--once", "--channel", "live")
    assert ran.exit_code == 0, ran.output
    assert f"warning: IMAP: could not log in to 127.0.0.1:{imap.port}" in ran.stderr
    assert "not-the-password" not in ran.output + ran.stderr
    assert len(imap.unseen()) == 1  # left for a run that can read it


def test_the_daemon_tells_the_coach_of_an_answer_in_the_mailbox(
    mailed,  # noqa: F811 - the fixture
    imap,
    project,
    store_url,
    monkeypatch,
):
    use_mailbox(project, imap, monkeypatch)
    command = [sys.executable, "-m", "nurture", "--database-url", store_url, "run",
               "--channel", "live", "--poll", "0.2"]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])}
    daemon = subprocess.Popen(command, cwd=project, env=env, stderr=subprocess.PIPE, text=True)
    try:
        imap.deliver(reply("Yes please", mailed.messages[0]["Message-ID"]))
        deadline = time.monotonic() + 60
        while len(mailed.messages) < 2:
            assert daemon.poll() is None, "the daemon stopped"
            assert time.monotonic() < deadline, "the coach heard nothing"
            time.sleep(0.1)
    finally:
        daemon.terminate()
        log = daemon.communicate(timeout=30)[1]
    assert "Yes please" in mailed.messages[1].get_body(("plain",)).get_content()
    assert " mail reply=1" in log and PASSWORD not in log
    assert imap.unseen() == []


def test_a_mailbox_read_in_the_clear_is_only_for_localhost(run, project):
    (project / "nurture.toml").write_text(
        '[inbound_email.imap]\nhost = "imap.example.com"\nsecurity = "none"\nusername = "r"\n'
    )
    result = run("config", "show")
    assert result.exit_code == 1
    assert "sends the IMAP password in the clear: only for localhost" in result.stderr


def test_channels_check_logs_in_to_the_mailbox_without_reading_it(imap, run, project, monkeypatch):
    use_mailbox(project, imap, monkeypatch)
    imap.deliver(reply("Hi", "<a@b>"))
    checked = run("channels", "check", "mailbox", "--json")
    assert checked.exit_code == 0, checked.output
    [row] = json.loads(checked.stdout)
    assert (row["channel"], row["ok"]) == ("mailbox", True)
    assert row["detail"] == f"{USER} at 127.0.0.1:{imap.port}, folder INBOX: 1 unseen"
    assert len(imap.unseen()) == 1  # still unseen: checked, not read
    monkeypatch.setenv("NURTURE_INBOUND_EMAIL__IMAP__PASSWORD", "not-the-password")
    failed = run("channels", "check")
    assert failed.exit_code == 1 and "mailbox" in failed.stdout and "FAILED" in failed.stdout
    assert "not-the-password" not in failed.stdout + failed.stderr
