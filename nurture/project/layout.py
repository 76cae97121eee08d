"""A nurture project on disk: nurture.toml, the sequences folder, and `nurture init`."""

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nurture.errors import NotFound, NurtureError
from nurture.settings import PROJECT_FILE, Settings
from nurture.spec.appointments import Bookable
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.files import SequenceFile
from nurture.spec.lint import checked
from nurture.spec.names import slugify
from nurture.spec.schema import sequence_json_schema_text

EXAMPLES = ("warm-lead-welcome.yaml", "consultation-follow-up.yaml")

PROJECT_TOML = """\
# nurture project settings. Secrets (SMTP password, Twilio token) go in .env, never here.
# Every key can be overridden by a NURTURE_* environment variable (nested keys with __).

# database_url = "postgresql+psycopg://user@localhost/nurture"   # default: sqlite nurture.db here
sequences_dir = "sequences"
timezone = "UTC"                      # for leads without a time zone of their own
conversion_statuses = ["Converted", "Won", "Client"]

[coach]                               # templates read these as {{ coach.name }} and so on
name = "Your Name"
business = "Your Coaching Business"
email = "coach@example.com"
booking_url = "https://example.com/book"

# Going live (see the README): `channel = "live"` sends through these providers; secrets go in
# .env as NURTURE_EMAIL__PASSWORD, NURTURE_TWILIO__AUTH_TOKEN, NURTURE_UNSUBSCRIBE__SECRET.
# [email]
# host = "smtp.example.com"
# username = "coach@example.com"
# from_address = "coach@example.com"
# [twilio]
# account_sid = "AC..."
# sms_from = "+15017122661"
# whatsapp_from = "+14155238886"
# [rate_limits]
# sms = 1
"""

GITIGNORE = "nurture.db\nnurture.db-wal\nnurture.db-shm\n.env\n"


@dataclass(frozen=True)
class Project:
    root: Path
    sequences_dir: Path
    coach_keys: frozenset[str]
    bookable: Bookable | None = None
    """What the settings allow of appointments (None: not checked)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "Project":
        coach_keys = frozenset(settings.coach.model_dump())
        return cls(settings.project_dir, settings.sequences_path, coach_keys, bookable(settings))

    def files(self) -> list[SequenceFile]:
        """Every sequence file, validated (against the settings too, as `validate` does);
        SpecError lists every problem if any is invalid."""
        found = checked(
            [self.sequences_dir], coach_keys=self.coach_keys, bookable=self.bookable, warnings=False
        )
        return found.valid_sequences()

    def file_of(self, name: str, files: list[SequenceFile] | None = None) -> SequenceFile:
        """The file of the sequence with this name or slug."""
        files = self.files() if files is None else files
        by_slug = {file.spec.slug: file for file in files}
        found = by_slug.get(slugify(name))
        if found is None:
            raise NotFound(
                f"no sequence file for {name!r}"
                + did_you_mean(name, [f.spec.name for f in files], by_word=True)
            )
        return found


def bookable(settings: Settings) -> Bookable:
    """What the project's settings allow of appointments: booking, and booking links."""
    # read from the settings, not from `settings.booking`: validate need not import booking
    links = bool(settings.booking_secret and settings.api.public_url)
    return Bookable(availability=settings.availability is not None, links=links)


def init_project(directory: Path, templates: Sequence[str] = ()) -> list[Path]:
    """Write a new project into `directory`; the paths written or extended, relative to it.

    With `templates`, the sequences are those templates of the library instead of the examples."""
    if (directory / PROJECT_FILE).exists():
        raise NurtureError(f"{directory / PROJECT_FILE} already exists; not overwriting a project")
    clone = source_tree()
    if clone is not None and directory.resolve().is_relative_to(clone):
        raise NurtureError(
            f"{directory} is inside nurture's own source tree ({clone}); create the project "
            f"outside it, e.g. `nurture init {clone.parent / directory.resolve().name}`"
        )
    sequences = {Path("sequences") / name: text for name, text in _sequences(templates).items()}
    (directory / "sequences").mkdir(parents=True, exist_ok=True)
    (directory / "schema").mkdir(exist_ok=True)
    wanted = {
        Path(PROJECT_FILE): PROJECT_TOML,
        Path("schema/sequence.schema.json"): sequence_json_schema_text(),
        **sequences,
    }
    written = [path for path, text in wanted.items() if _write_new(directory / path, text)]
    if _ignore(directory / ".gitignore"):
        written.append(Path(".gitignore"))
    return sorted(written)


def _sequences(templates: Sequence[str]) -> dict[str, str]:
    """The sequence files a new project starts with, by file name."""
    if templates:
        from nurture.project.library import template_named  # YAML: only when asked for

        chosen = [template_named(name) for name in templates]  # all known before any is written
        return {f"{template.name}.yaml": template.text for template in chosen}
    examples = resources.files("nurture.project.examples")
    return {name: examples.joinpath(name).read_text(encoding="utf-8") for name in EXAMPLES}


def source_tree() -> Path | None:
    """The checkout nurture runs from (an editable install, a clone on PYTHONPATH); None when
    nurture is installed as a package."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "nurture"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def _write_new(path: Path, text: str) -> bool:
    if path.exists():
        return False
    path.write_text(text, encoding="utf-8")
    return True


def _ignore(path: Path) -> bool:
    """Make .gitignore ignore the database and .env, keeping what it had; whether it changed."""
    have = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    missing = [line for line in GITIGNORE.splitlines() if line not in have]
    if missing:
        prefix = "\n" if have and path.read_text(encoding="utf-8")[-1:] != "\n" else ""
        with path.open("a", encoding="utf-8") as stream:
            stream.write(prefix + "\n".join(missing) + "\n")
    return bool(missing)
