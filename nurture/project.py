"""A nurture project on disk: nurture.toml, the sequences folder, and `nurture init`."""

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nurture.errors import NotFound, NurtureError
from nurture.settings import PROJECT_FILE, Settings
from nurture.spec.files import SequenceFile, load_sequences
from nurture.spec.names import slugify

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
"""

GITIGNORE = "nurture.db\nnurture.db-wal\nnurture.db-shm\n.env\n"


@dataclass(frozen=True)
class Project:
    root: Path
    sequences_dir: Path
    coach_keys: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> "Project":
        return cls(
            settings.project_dir, settings.sequences_path, frozenset(settings.coach.model_dump())
        )

    def files(self) -> list[SequenceFile]:
        """Every sequence file, validated; SpecError lists every problem if any is invalid."""
        return load_sequences([self.sequences_dir], coach_keys=self.coach_keys)

    def file_of(self, name: str, files: list[SequenceFile] | None = None) -> SequenceFile:
        """The file of the sequence with this name or slug."""
        files = self.files() if files is None else files
        by_slug = {file.spec.slug: file for file in files}
        found = by_slug.get(slugify(name))
        if found is None:
            raise NotFound(
                f"no sequence file for {name!r}" + did_you_mean(name, [f.spec.name for f in files])
            )
        return found


def did_you_mean(name: str, candidates: list[str]) -> str:
    """` (did you mean 'x'?)` when a candidate is close to `name`, else nothing."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def init_project(directory: Path) -> list[Path]:
    """Write a new project into `directory`; the paths written, relative to it."""
    if (directory / PROJECT_FILE).exists():
        raise NurtureError(f"{directory / PROJECT_FILE} already exists; not overwriting a project")
    (directory / "sequences").mkdir(parents=True, exist_ok=True)
    written = {Path(PROJECT_FILE): PROJECT_TOML, Path(".gitignore"): GITIGNORE}
    examples = resources.files("nurture.examples")
    for name in EXAMPLES:
        written[Path("sequences") / name] = examples.joinpath(name).read_text(encoding="utf-8")
    for path, text in written.items():
        if not (directory / path).exists():
            (directory / path).write_text(text, encoding="utf-8")
    return sorted(written)
