"""Settings: CLI flag > NURTURE_* environment > .env > nurture.toml > defaults."""

import subprocess
import sys
from pathlib import Path

import pytest

from nurture.errors import ConfigError
from nurture.settings import load_settings


@pytest.fixture
def layered(tmp_path: Path) -> Path:
    (tmp_path / "nurture.toml").write_text(
        'timezone = "Europe/Madrid"\nsequences_dir = "flows"\n[coach]\nname = "Toml Coach"\nphone = "+1"\n'
    )
    (tmp_path / ".env").write_text(
        "NURTURE_TIMEZONE=Europe/London\nNURTURE_COACH__NAME=Dotenv Coach\n"
    )
    (tmp_path / "deep" / "er").mkdir(parents=True)
    return tmp_path


def test_each_layer_overrides_the_one_below(layered: Path, monkeypatch: pytest.MonkeyPatch):
    settings = load_settings(layered / "deep" / "er")
    assert settings.project_dir == layered
    assert settings.timezone == "Europe/London"  # .env over nurture.toml
    assert settings.coach.name == "Dotenv Coach" and settings.coach.phone == "+1"
    assert settings.sequences_path == layered / "flows"
    assert settings.database == f"sqlite:///{layered / 'nurture.db'}"
    monkeypatch.setenv("NURTURE_TIMEZONE", "Asia/Tokyo")
    assert load_settings(layered).timezone == "Asia/Tokyo"  # environment over .env
    assert load_settings(layered, timezone="America/Lima").timezone == "America/Lima"  # flag first


def test_a_wrong_setting_names_the_field(layered: Path):
    (layered / ".env").unlink()
    (layered / "nurture.toml").write_text('timezone = "Mars/Base"\n')
    with pytest.raises(ConfigError, match="timezone: .*'Mars/Base' is not an IANA time zone"):
        load_settings(layered)


def test_broken_toml_names_the_file(layered: Path):
    (layered / "nurture.toml").write_text("timezone = \n")
    with pytest.raises(ConfigError, match="nurture.toml"):
        load_settings(layered)


def test_database_url_flag_reaches_the_store(run, project: Path, tmp_path: Path):
    other = tmp_path / "elsewhere.db"
    result = run("--database-url", f"sqlite:///{other}", "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert other.is_file() and not (project / "nurture.db").exists()


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "nurture", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "validate" in done.stdout


def test_unexpected_errors_are_one_line_unless_debug(run, project: Path):
    (project / "nurture.toml").write_text('database_url = "sqlite:////nonexistent/dir/x.db"\n')
    result = run("apply", "--yes")  # a write: it opens (and would make) the store
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    with pytest.raises(Exception):  # noqa: B017 - --debug lets the real error through
        run("--debug", "apply", "--yes")


def test_an_unknown_setting_is_an_error_with_a_hint(layered: Path):
    (layered / "nurture.toml").write_text('sequence_dir = "flows"\n')
    with pytest.raises(
        ConfigError, match="unknown setting 'sequence_dir' .did you mean 'sequences_dir'"
    ):
        load_settings(layered)


@pytest.mark.parametrize(
    ("toml", "env", "said"),
    [('[twilio]\naccount_sid = "AC' + "0" * 32 + '"\nsms_from = "hello"\n', {},
      "twilio.sms_from: 'hello' is not a number in E.164"),
     ('[email]\nhost = "x"\nfrom_address = "a@b.co"\n', {"NURTURE_EMAIL__PASSWORD": "pw"},
      "email: a password is set (NURTURE_EMAIL__PASSWORD) but no username"),
     ('channel = "lve"\n', {}, "channel: unknown value 'lve' (did you mean 'live'?)"),
     ('phone_region = "ZZ"\n', {}, "phone_region: 'ZZ' is not a country code phone numbers know")],
)  # fmt: skip
def test_settings_that_would_fail_later_fail_when_they_load(
    project, run, monkeypatch, toml, env, said
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with (project / "nurture.toml").open("a") as file:
        file.write(toml)
    result = run("config", "show")
    assert result.exit_code == 1 and said in result.output
