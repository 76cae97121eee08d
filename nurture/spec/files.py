"""Sequence files on disk: every file checked, every problem of every file reported at once."""

import json
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from nurture.errors import SpecError
from nurture.spec.diagnostics import Diagnostic, has_errors, validation_diagnostics
from nurture.spec.loader import MAX_BYTES, load_yaml
from nurture.spec.models import SequenceSpec
from nurture.spec.names import slugify
from nurture.spec.positions import Document, Loc, Position, Scalar
from nurture.spec.templates import TemplateProblem, check_template, template_fields
from nurture.spec.whatsapp import window_warnings

SEQUENCE_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
"""A sequence file is YAML, or JSON as the original API spoke it (JSON is YAML: one loader)."""
STDIN = Path("-")
"""A path that means standard input."""


@dataclass(frozen=True)
class SequenceFile:
    """A valid sequence file: where it is, what it says, and where each key and item is."""

    path: Path
    spec: SequenceSpec
    document: Document

    @property
    def positions(self) -> dict[Loc, Position]:
        """(line, column) of every key and list item, by path in the file."""
        return self.document.positions

    def position(self, loc: Loc) -> Position:
        """Line and column of a model loc such as ('steps', 2, 'action_config', 'message')."""
        return self.document.position(loc)


@dataclass
class CheckResult:
    sequences: list[SequenceFile] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0

    @property
    def valid(self) -> bool:
        return not has_errors(self.diagnostics)

    def valid_sequences(self) -> list[SequenceFile]:
        """The sequences; SpecError lists every error if any file is invalid."""
        if not self.valid:
            raise SpecError([d for d in self.diagnostics if d.severity == "error"])
        return self.sequences


def load_sequences(
    paths: Iterable[Path], coach_keys: Collection[str] | None = None
) -> list[SequenceFile]:
    """Every sequence in `paths`; SpecError lists every problem if any file is invalid."""
    return check_files(list(paths), coach_keys=coach_keys).valid_sequences()


def check_files(
    paths: list[Path],
    *,
    coach_keys: Collection[str] | None = None,
    drafts: Mapping[Path, str] | None = None,
) -> CheckResult:
    """Check files and folders of sequence files (a folder: its *.yaml, *.yml and *.json, sorted).

    `drafts`: text to check instead of a file's content, or as a file not written yet."""
    files, diagnostics = _expand(paths)
    known = {path.resolve() for path in files}
    new = [path for path in drafts or {} if path.resolve() not in known]
    if new:
        files = sorted(files + new, key=lambda path: path.resolve())
    texts = {path.resolve(): text for path, text in (drafts or {}).items()}
    result = CheckResult(diagnostics=diagnostics, files=len(files))
    named: dict[str, tuple[Path, str]] = {}
    for path in files:
        document, spec, problems = _check_file(path, coach_keys, texts.get(path.resolve()))
        if document is not None:
            problems += _name_problems(path, document, named)
        result.diagnostics += sorted(problems, key=lambda d: (d.line, d.column))
        if document is not None and spec is not None and not has_errors(problems):
            result.sequences.append(SequenceFile(path, spec, document))
    if result.valid:  # with a file missing, its funnels would be missing too
        result.diagnostics += list(_case_funnels(result.sequences))
    return result


def _case_funnels(files: list[SequenceFile]) -> Iterator[Diagnostic]:
    """A test case's funnel that no sequence of the project offers: the case cannot run."""
    known = {slugify(funnel): funnel for file in files for funnel in file.spec.funnels}
    for file in files:
        for index, case in enumerate(file.spec.tests):
            if case.funnel is not None and slugify(case.funnel) not in known:
                names = ", ".join(sorted(known)) or "none"
                loc = ("tests", index, "funnel")
                message = (
                    f"test {case.name!r} names funnel {case.funnel!r}, which no sequence "
                    f"offers (funnels: {names})"
                )
                path = file.document.resolve(loc)
                yield Diagnostic(shown(file.path), *file.position(loc), message, path=path)


def _check_file(
    path: Path, coach_keys: Collection[str] | None, draft: str | None = None
) -> tuple[Document | None, SequenceSpec | None, list[Diagnostic]]:
    """One file (or `draft`, its text to be): its document (None when not usable YAML), its
    spec (None if invalid), problems."""
    filename = shown(path)
    try:
        raw = _read(path) if draft is None else draft.encode("utf-8")
    except OSError as error:
        return None, None, [Diagnostic(filename, 1, 1, f"cannot read: {error.strerror or error}")]
    if path.suffix.lower() == ".json":
        broken = _json_problem(raw, filename)
        if broken is not None:
            return None, None, [broken]
        raw = raw.replace(b"\t", b" ")  # valid JSON has tabs only between tokens; YAML refuses them
    loaded = load_yaml(raw, filename)
    document = loaded.document
    if document is None:
        return None, None, loaded.diagnostics
    spec, problems = _validate(document, filename)
    problems += window_warnings(spec, document, filename) if spec is not None else []
    templates = list(_template_problems(document, filename, coach_keys))
    return document, spec, loaded.diagnostics + problems + templates


def _read(path: Path) -> bytes:
    with _opened(path) as stream:
        return stream.read(MAX_BYTES + 1)  # bounded: a huge file or a device cannot hang us


def _opened(path: Path) -> AbstractContextManager[IO[bytes]]:
    """The file to read; `-`: standard input (left open for whoever reads it next)."""
    if path == STDIN:
        return nullcontext(sys.stdin.buffer)
    return path.open("rb")


def _json_problem(raw: bytes, filename: str) -> Diagnostic | None:
    """Invalid JSON in json's own words, at its line and column (valid JSON loads as YAML)."""
    try:
        json.loads(raw)
    except json.JSONDecodeError as error:
        return Diagnostic(filename, error.lineno, error.colno, f"invalid JSON: {error.msg}")
    except (UnicodeDecodeError, RecursionError):  # the YAML loader says what is wrong
        return None
    return None


def _expand(paths: list[Path]) -> tuple[list[Path], list[Diagnostic]]:
    files: dict[Path, Path] = {}
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            exists = path == STDIN or path.exists()
            found = _files_in(path) if path.is_dir() else [path] if exists else None
        except OSError as error:
            found, message = None, f"cannot read: {error.strerror or error}"
        else:
            message = "no such file or directory"
        if found is None:
            problems.append(Diagnostic(shown(path), 1, 1, message))
        elif not found:
            message = "no sequence files (*.yaml, *.yml, *.json) in this folder"
            problems.append(Diagnostic(shown(path), 1, 1, message, "warning"))
        for file in found or []:
            files.setdefault(file.resolve(), file)  # a file named twice is checked once
        if found is not None and path.is_dir():
            problems += _unread_subfolders(path)
    return list(files.values()), problems


def _unread_subfolders(folder: Path) -> list[Diagnostic]:
    """Sequence files live directly in the folder: say so when a subfolder holds some."""
    nested = sorted(
        sub
        for sub in folder.iterdir()
        if sub.is_dir() and not sub.name.startswith(".") and _files_in(sub)
    )
    message = "holds sequence files that are not read: sequences live directly in {}"
    return [
        Diagnostic(shown(sub), 1, 1, message.format(shown(folder)), "warning") for sub in nested
    ]


def shown(path: Path) -> str:
    """A path as diagnostics print it: relative to the working directory when inside it."""
    if path == STDIN:
        return "<stdin>"
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _files_in(folder: Path) -> list[Path]:
    """The sequence files directly in `folder`; hidden files (editor backups) are skipped."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in SEQUENCE_SUFFIXES
        and not path.name.startswith(".")
        and path.is_file()
    )


def _validate(document: Document, filename: str) -> tuple[SequenceSpec | None, list[Diagnostic]]:
    try:
        return SequenceSpec.model_validate(document.data), []
    except ValidationError as error:
        return None, validation_diagnostics(error, document, filename, SequenceSpec)


def _name_problems(
    path: Path, document: Document, named: dict[str, tuple[Path, str]]
) -> list[Diagnostic]:
    """Sequence names must differ in their slug: `Warm Lead Welcome` is `warm-lead-welcome`."""
    name = document.data.get("name")
    if not isinstance(name, str) or not name:
        return []
    where = document.position(("name",))
    slug = slugify(name)
    if not slug:
        message = f"name {name!r} needs a letter or a digit (commands address sequences by slug)"
        return [Diagnostic(shown(path), *where, message, path=("name",))]
    if slug not in named:
        named[slug] = (path, name)
        return []
    first_path, first_name = named[slug]
    same = "" if first_name == name else f" (same slug as {first_name!r})"
    message = f"duplicate sequence name {name!r}{same}: already in {shown(first_path)}"
    return [Diagnostic(shown(path), *where, message, path=("name",))]


def _template_problems(
    document: Document, filename: str, coach_keys: Collection[str] | None
) -> Iterator[Diagnostic]:
    for loc, source in template_fields(document.data):
        scalar = document.scalars.get(loc)
        for problem in check_template(source, coach_keys):
            line, column = _template_position(document, loc, scalar, problem)
            field = f"variables.{loc[-1]}" if loc[-2] == "variables" else loc[-1]
            yield Diagnostic(filename, line, column, f"{field}: {problem.message}", path=loc)


def _template_position(
    document: Document, loc: Loc, scalar: Scalar | None, problem: TemplateProblem
) -> Position:
    """Where a template's problem is in the file: its line, and the column of the offending text."""
    if scalar is None:
        return document.position(loc)
    first = scalar.line + (1 if scalar.block else 0)  # a block scalar's text starts below `|`
    guess = min(first + problem.line_in_template - 1, max(scalar.end_line, first))
    if problem.needle:
        found = _find(document, scalar, problem.needle, guess)
        if found:
            return found
    return guess, scalar.column


def _find(document: Document, scalar: Scalar, needle: str, guess: int) -> Position | None:
    """The needle on the guessed line or below it (folded text has fewer lines), else above."""
    last = min(max(scalar.end_line, guess), len(document.lines))
    for line in [*range(guess, last + 1), *range(scalar.line, guess)]:
        start = scalar.column - 1 if line == scalar.line else 0
        column = document.lines[line - 1].find(needle, start)
        if column >= 0:
            return line, column + 1
    return None
