"""An import file's rows: CSV or JSON lines, each header read as a lead field, each value checked.

A row's problems become its error (`__error__`, or NurtureError from `lead_input`): the import
reports it with the row number and goes on with the others.
"""

import csv
import io
import json
import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from nurture.errors import NurtureError
from nurture.leads.fields import FIELD_NAME_LENGTH, shown, text_problem
from nurture.leads.records import LeadInput

ALIASES = {
    "name": ("name", "full name", "fullname", "lead name", "contact name"),
    "email": ("email", "e mail", "email address", "mail"),
    "phone": ("phone", "phone number", "mobile", "cell", "whatsapp", "telephone"),
    "source": ("source", "lead source", "leadsource"),
    "status": ("status", "lead status", "leadstatus"),
    "temperature": ("temperature", "lead temperature", "leadtemperature"),
    "score": ("score", "lead score", "leadscore"),
    "tags": ("tags", "tag", "labels"),
    "timezone": ("timezone", "time zone", "tz"),
    "external_id": ("external id", "externalid", "id", "lead id", "leadid"),
    "funnel": ("funnel", "funnel name"),
    "at": ("at", "created at", "created", "created on", "date added", "added at", "added on"),
    "first": ("first name", "firstname", "given name"),
    "last": ("last name", "lastname", "surname", "family name"),
}
_BY_HEADER = {alias: key for key, aliases in ALIASES.items() for alias in aliases}


_KEYS: dict[str, str] = {}
"""The headers met so far and their keys: a plain dict, asked for every cell of an import."""


def header_key(header: str) -> str:
    """The lead field a column header means (`Full Name` -> name); other headers are custom fields."""
    key = _KEYS.get(header)
    if key is None:
        plain = " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())
        key = _BY_HEADER.get(plain, "fields." + header.strip().removeprefix("fields."))
        if len(_KEYS) < 1024:
            _KEYS[header] = key
    return key


class Row(NamedTuple):
    number: int
    data: dict[str, Any]


def read_rows(path: Path) -> list[Row]:
    """The file's rows with their numbers: the line each starts on (a CSV header is line 1);
    `-` reads standard input."""
    try:
        text = _stdin() if str(path) == "-" else path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise NurtureError(f"cannot read {path}: {error}") from None
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or text.lstrip().startswith("{"):
        return list(_json_rows(text))
    return list(_csv_rows(text))


def _stdin() -> str:
    return sys.stdin.read().removeprefix("\ufeff")


def _csv_rows(text: str) -> Iterator[Row]:
    lines = io.StringIO(text, newline="").readlines()
    # no cell is longer than the file: a huge one is its row's error (a value's limit), not the file's
    with _cells_up_to(len(text)):
        headers, start = _header(lines)
        for record in _records(lines, start, len(headers)):
            if data := _row_data(headers, record):  # a row of empty cells holds no lead
                yield Row(record.line, data)


@contextmanager
def _cells_up_to(size: int) -> Iterator[None]:
    before = csv.field_size_limit()
    csv.field_size_limit(max(size, before))
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _header(lines: list[str]) -> tuple[list[str], int]:
    """The header's columns, checked, and the number of lines it takes."""
    reader = csv.reader(lines, strict=True)
    try:
        headers = next((values for values in reader if values), [])
    except csv.Error as error:
        raise NurtureError(f"the header cannot be read as CSV: {error}") from None
    _check_header(headers)
    return headers, reader.line_num


class _Record(NamedTuple):
    line: int
    """The line the record starts on."""
    values: list[str]
    problem: str | None = None


def _records(lines: list[str], start: int, width: int) -> Iterator[_Record]:
    """The records from line index `start` on. A record that cannot be read as CSV (its quoting)
    or that took in what reads as further rows (a quote left open) is reported, and reading
    goes on at the line after its first: the rows it swallowed are read as rows again."""
    at: int | None = start
    while at is not None:
        at = yield from _read_from(lines, at, width)


def _read_from(lines: list[str], start: int, width: int) -> Generator[_Record, None, int | None]:
    """Records up to the first bad one; then the line index to read on from (None: the end)."""
    reader = csv.reader(islice(lines, start, None), strict=True)
    done = 0  # lines read
    try:
        for values in reader:
            line, last, done = start + done + 1, start + reader.line_num, reader.line_num
            if last > line and _swallowed(values, width):
                yield _Record(line, values, _open_quote(line, last))
                return line
            if values:  # a blank line holds no row
                yield _Record(line, values)
    except csv.Error as error:
        line, last = start + done + 1, start + reader.line_num
        yield _Record(line, [], _bad_quoting(str(error), line, last))
        return line
    return None


def _swallowed(values: list[str], width: int) -> bool:
    """Fewer values than the header has columns, and a value holds lines that read as rows."""
    return len(values) < width and any(
        len(next(csv.reader([line]), [])) >= width
        for value in values
        for line in value.splitlines()[1:]
    )


def _open_quote(line: int, last: int) -> str:
    return (
        f"a quote opened on this row is not closed, so lines {line}-{last} read as one row "
        "(the rows after it are read on their own): close the quote, or write a quote that is "
        'part of a value as ""'
    )


def _bad_quoting(error: str, line: int, last: int) -> str:
    if error == "unexpected end of data" or last > line:
        return _open_quote(line, last)
    if error.endswith("expected after '\"'"):
        return 'a value has text after its closing quote: quote the whole value ("Ana Ruiz")'
    return f"the row cannot be read as CSV: {error}"


def _row_data(headers: list[str], record: _Record) -> dict[str, Any]:
    """The row's values by header (empty cells left out), or its `__error__`."""
    if record.problem is not None:
        return {"__error__": record.problem}
    if len(record.values) > len(headers):
        surplus = f"{len(record.values)} values, but the header names {len(headers)} columns"
        return {"__error__": surplus}
    given = zip(headers, record.values, strict=False)  # fewer values: the last cells are empty
    return {header: value for header, value in given if value != ""}


def _check_header(headers: list[str]) -> None:
    """Each column names one field a lead can hold; two for one field would leave one unused."""
    seen: dict[str, int] = {}
    for number, header in enumerate(headers, start=1):
        key = header_key(header)
        if (problem := text_problem(header)) is not None:
            raise NurtureError(f"the header's column {number} {problem}")
        if len(header) > FIELD_NAME_LENGTH:
            raise NurtureError(
                f"the header's column {number} ({shown(header)}) is longer than a custom "
                f"field's name may be ({FIELD_NAME_LENGTH} characters)"
            )
        if key in seen:
            raise NurtureError(
                f"the header's columns {seen[key]} ({headers[seen[key] - 1]!r}) and {number} "
                f"({header!r}) are both {key.removeprefix('fields.')}: keep one"
            )
        seen[key] = number


def _json_rows(text: str) -> Iterator[Row]:
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: \u2028 is text
        if line.strip():
            yield Row(number, _json_line(line))


def _json_line(line: str) -> Any:
    """The line's object, or its `__error__`."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        return {"__error__": f"invalid JSON: {error.msg} at column {error.colno}"}
    except ValueError:  # Python's int() limit: sys.get_int_max_str_digits()
        return {"__error__": "invalid JSON: a number has more than 4,300 digits"}
    except RecursionError:
        return {"__error__": "invalid JSON: lists or objects nest too deeply"}
    return data if isinstance(data, dict) else {"__error__": "a line must be a JSON object"}


SCALARS = (str, int, float, bool)
_SPECIAL = frozenset({"at", "tags"})


class RowLead(NamedTuple):
    """What a row says: its funnel, the lead's data, and when it arrived (column, text)."""

    funnel: str | None
    data: LeadInput
    at: tuple[str, str] | None


def lead_input(data: dict[str, Any]) -> RowLead:
    """The row's funnel, lead data and arrival time, by header; NurtureError names a value of
    the wrong shape (JSON lines can hold lists and objects where a CSV cell cannot)."""
    if "__error__" in data:
        raise NurtureError(data["__error__"])
    fields = data.get("fields")
    if fields is not None and not isinstance(fields, dict):
        raise NurtureError(f"fields: wants an object of custom fields, got {_shape(fields)}")
    custom = {name: _field_value(f"fields.{name}", value) for name, value in (fields or {}).items()}
    given: dict[str, Any] = {"fields": custom}
    at: tuple[str, str] | None = None
    for header, value in data.items():
        key = _KEYS.get(header) or header_key(header)
        if value is None or header == "fields":
            continue  # None as an empty CSV cell: not given; fields: above
        if key.startswith("fields."):
            custom[key[7:]] = value if type(value) is str else _field_value(header, value)
        elif type(value) is str and key not in _SPECIAL:
            given[key] = value  # a CSV cell
        elif key == "at":
            at = (header, _scalar(header, value, "a time"))
        elif key == "tags" and isinstance(value, list):
            given[key] = [_scalar(header, tag, "a tag") for tag in value if tag is not None]
        else:
            given[key] = _scalar(header, value, "a single value")
    first, last = given.pop("first", None), given.pop("last", None)
    if "name" not in given and (first or last):
        given["name"] = " ".join(part for part in (first, last) if part)
    if isinstance(given.get("tags"), str):
        given["tags"] = given["tags"].replace(";", ",").split(",")
    funnel = given.pop("funnel", None)
    return RowLead(funnel, LeadInput(**given), at)


def _scalar(header: str, value: Any, wanted: str) -> str:
    if isinstance(value, SCALARS):
        return str(value)
    raise NurtureError(f"{header}: wants {wanted}, got {_shape(value)}")


def _field_value(header: str, value: Any) -> Any:
    """A custom field's value: a text, number or true/false, or a list of them."""
    if isinstance(value, SCALARS) or value is None:
        return value
    if isinstance(value, list) and all(isinstance(item, SCALARS) for item in value):
        return value
    raise NurtureError(
        f"{header}: wants a text, number, true/false or a list of them, got {_shape(value)}"
    )


def _shape(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list"}
    return names.get(type(value), type(value).__name__)


def phones(rows: list[Row]) -> list[str]:
    """The phone numbers of these rows, as given."""
    headers = {header for row in rows for header in row.data}  # a CSV's: its header's
    wanted = [header for header in headers if header_key(header) == "phone"]
    return [
        value for row in rows for header in wanted if isinstance(value := row.data.get(header), str)
    ]
