"""An import file's rows: CSV or JSON lines, each header read as a lead field, each value checked.

A row's problems become its error (`__error__`, or NurtureError from `lead_input`): the import
reports it with the row number and goes on with the others.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from nurture.errors import NurtureError
from nurture.leads import LeadInput

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
    "first": ("first name", "firstname", "given name"),
    "last": ("last name", "lastname", "surname", "family name"),
}
_BY_HEADER = {alias: key for key, aliases in ALIASES.items() for alias in aliases}


@lru_cache(maxsize=1024)
def header_key(header: str) -> str:
    """The lead field a column header means (`Full Name` -> name); other headers are custom fields."""
    plain = " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())
    return _BY_HEADER.get(plain, "fields." + header.strip().removeprefix("fields."))


@dataclass(frozen=True)
class Row:
    number: int
    data: dict[str, Any]


def read_rows(path: Path) -> list[Row]:
    """The file's rows with their numbers (CSV: the line, the header being 1; JSON lines: the line)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise NurtureError(f"cannot read {path}: {error}") from None
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or text.lstrip().startswith("{"):
        return list(_json_rows(text))
    return list(_csv_rows(text))


def _csv_rows(text: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _check_header(reader.fieldnames or [])
    for record in reader:
        extra = record.pop(None, None)  # DictReader puts surplus values under None
        data = {k: v for k, v in record.items() if v not in (None, "")}
        if extra:
            data = {"__error__": f"{len(reader.fieldnames or []) + len(extra)} values, but the "
                    f"header names {len(reader.fieldnames or [])} columns"}  # fmt: skip
        if data:
            yield Row(reader.line_num, data)


def _check_header(headers: list[str]) -> None:
    """Two columns for one field would leave one of them silently unused."""
    seen: dict[str, int] = {}
    for number, header in enumerate(headers, start=1):
        key = header_key(header)
        if key in seen:
            raise NurtureError(
                f"the header's columns {seen[key]} ({headers[seen[key] - 1]!r}) and {number} "
                f"({header!r}) are both {key.removeprefix('fields.')}: keep one"
            )
        seen[key] = number


def _json_rows(text: str) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            data = {"__error__": f"invalid JSON: {error.msg} at column {error.colno}"}
        if not isinstance(data, dict):
            data = {"__error__": "a line must be a JSON object"}
        yield Row(number, data)


SCALARS = (str, int, float, bool)


def lead_input(data: dict[str, Any]) -> tuple[str | None, LeadInput]:
    """The row's funnel and lead data, by header; NurtureError names a value of the wrong shape
    (JSON lines can hold lists and objects where a CSV cell cannot)."""
    if "__error__" in data:
        raise NurtureError(data["__error__"])
    fields = data.pop("fields", None)
    if fields is not None and not isinstance(fields, dict):
        raise NurtureError(f"fields: wants an object of custom fields, got {_shape(fields)}")
    given: dict[str, Any] = {"fields": {}}
    for name, value in (fields or {}).items():
        given["fields"][name] = _field_value(f"fields.{name}", value)
    for header, value in data.items():
        key = header_key(header)
        if value is None:
            continue  # as an empty CSV cell: not given
        if key.startswith("fields."):
            given["fields"][key.removeprefix("fields.")] = _field_value(header, value)
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
    return funnel, LeadInput(**given)


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
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def phones(rows: list[Row]) -> list[str]:
    """The phone numbers of these rows, as given."""
    return [
        value
        for row in rows
        for header, value in row.data.items()
        if isinstance(value, str) and header_key(header) == "phone"
    ]
