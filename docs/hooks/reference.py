"""mkdocs hook: the reference pages, written from the code at every build.

A page holds a marker (`<!-- reference:cli -->`, `<!-- reference:http -->`,
`<!-- reference:sequence -->`) and the build puts in its place the CLI from the typer app, the
HTTP API from the app's OpenAPI document, or the sequence format from its JSON Schema, so the
reference cannot drift from the code. Nothing is fetched: everything is read from this checkout.
"""

import functools
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
Link = Callable[[str], str]


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    """Replace each reference marker on the page with its generated markdown."""
    for marker, render in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown


# Tables


def cell(text: Any) -> str:
    """Text that fits in one markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|") if text not in (None, "") else ""


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A markdown table (empty when there are no rows)."""
    if not rows:
        return ""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def anchor(prefix: str, name: str) -> str:
    """A stable heading id: the prefix and the name, lower case, dashes for the rest."""
    return prefix + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# JSON Schema types (the sequence file's and the OpenAPI document's)


def type_of(schema: dict[str, Any], link: Link) -> str:
    """A schema's type in words, with links to the named schemas it refers to."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{link(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(type_of(part, link) for part in schema[key]))
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    return _plain_type(schema, link)


def _plain_type(schema: dict[str, Any], link: Link) -> str:
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_of(schema.get('items', {}), link)}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {type_of(schema['additionalProperties'], link)}"
    if kind == "object" and "properties" in schema:
        fields = ", ".join(f"`{name}`" for name in schema["properties"])
        return f"object ({fields})"
    return " or ".join(kind) if isinstance(kind, list) else kind


def limits(schema: dict[str, Any]) -> str:
    """The bounds a value must keep (numbers, lengths, items), in words."""
    words = {
        "minimum": "≥ {}",
        "exclusiveMinimum": "> {}",
        "maximum": "≤ {}",
        "exclusiveMaximum": "< {}",
        "minLength": "at least {} characters",
        "maxLength": "at most {} characters",
        "minItems": "at least {} items",
        "maxItems": "at most {} items",
    }
    found = [text.format(schema[key]) for key, text in words.items() if key in schema]
    for part in schema.get("anyOf", []):
        found += [bound for bound in limits(part).split("; ") if bound and bound not in found]
    return "; ".join(found)


def describe(schema: dict[str, Any]) -> str:
    """A property's description, its bounds and its examples."""
    parts = [schema.get("description", "")]
    if bounds := limits(schema):
        parts.append(f"({bounds})")
    if examples := schema.get("examples"):
        parts.append("Examples: " + ", ".join(f"`{example}`" for example in examples) + ".")
    return " ".join(part for part in parts if part)


def properties(schema: dict[str, Any], link: Link) -> str:
    """A table of an object schema's keys; aliases (`alias of x`) join their key's row."""
    props, required = schema.get("properties", {}), set(schema.get("required", []))
    aliases: dict[str, list[str]] = {}
    for name, prop in props.items():
        target = str(prop.get("description", "")).removeprefix("alias of ")
        if target != prop.get("description") and target in props:
            aliases.setdefault(target, []).append(f"`{name}`")
    rows = [
        [
            f"`{name}`",
            type_of(prop, link),
            "yes" if name in required else "",
            f"`{json.dumps(prop['default'])}`" if "default" in prop else "",
            ", ".join(aliases.get(name, [])),
            describe(prop),
        ]
        for name, prop in props.items()
        if not any(f"`{name}`" in names for names in aliases.values())
    ]
    header = ["key", "type", "required", "default", "aliases", "description"]
    return table(header, rows)


# The sequence format, from schema/sequence.schema.json


@functools.cache
def sequence_reference() -> str:
    """Every key of a sequence file and of each object in it, from the JSON Schema."""
    schema = json.loads((ROOT / "schema" / "sequence.schema.json").read_text(encoding="utf-8"))
    link = functools.partial(anchor, "def-")
    parts = [
        f"## {schema['title']} {{ #sequence-file }}\n",
        schema.get("description", "") + "\n",
        properties(schema, link),
    ]
    for name, definition in sorted(schema.get("$defs", {}).items()):
        parts += [f"## {name} {{ #{link(name)} }}\n", definition.get("description", "") + "\n"]
        parts.append(properties(definition, link) or f"Type: {type_of(definition, link)}\n")
    return "\n".join(parts)


# The CLI, from the typer app


@functools.cache
def cli_reference() -> str:
    """Every command of `nurture`: its usage, its help, its arguments and options."""
    import typer.main

    from nurture.cli.app import app

    command = typer.main.get_command(app)
    context = command.context_class(command, info_name="nurture")
    return "\n".join(_command_sections(command, context))


def _command_sections(command: Any, context: Any) -> Iterator[str]:
    yield _command_section(command, context)
    names = command.list_commands(context) if hasattr(command, "list_commands") else []
    for name in names:
        sub = command.get_command(context, name)
        if sub is not None and not sub.hidden:
            yield from _command_sections(
                sub, sub.context_class(sub, info_name=name, parent=context)
            )


def _command_section(command: Any, context: Any) -> str:
    path = context.command_path
    help_text, examples = _help_and_examples(command.help or "")
    parts = [f"## `{path}` {{ #{anchor('', path)} }}\n", help_text + "\n"]
    parts.append(f"```text\n{command.get_usage(context)}\n```\n")
    if examples:
        lines = "\n".join(f"$ {line}" for line in examples)
        parts.append(f"Examples:\n\n```console\n{lines}\n```\n")
    records = [command_param.get_help_record(context) for command_param in command.params]
    rows = [[f"`{names}`", text] for names, text in filter(None, records)]
    parts.append(table(["argument or option", "help"], rows))
    if hasattr(command, "list_commands"):
        subs = [
            (name, command.get_command(context, name)) for name in command.list_commands(context)
        ]
        parts += _command_tables(path, [(n, sub) for n, sub in subs if sub and not sub.hidden])
    return "\n".join(parts)


def _command_tables(path: str, subs: list[tuple[str, Any]]) -> list[str]:
    """The subcommands in a table per help panel, in the order `nurture -h` shows them."""
    panels: dict[str, list[list[str]]] = {}
    for name, sub in subs:
        link = f"[`{path} {name}`](#{anchor('', f'{path} {name}')})"
        panel = getattr(sub, "rich_help_panel", None) or "Commands"
        panels.setdefault(panel, []).append([link, sub.get_short_help_str(100)])
    if len(panels) == 1:
        return [table(["command", "what it does"], rows) for rows in panels.values()]
    return [
        f"**{panel}**\n\n" + table(["command", "what it does"], rows)
        for panel, rows in panels.items()
    ]


def _help_and_examples(text: str) -> tuple[str, list[str]]:
    """A command's help, and the command lines of its `Examples:` block (click's `\\b` dropped)."""
    lines = [line for line in text.splitlines() if line.strip() != "\b"]
    if "Examples:" not in [line.strip() for line in lines]:
        return "\n".join(lines), []
    at = [line.strip() for line in lines].index("Examples:")
    examples = [line.strip() for line in lines[at + 1 :] if line.strip()]
    return "\n".join(lines[:at]).rstrip(), examples


# The HTTP API, from the OpenAPI document of the app `nurture serve` runs


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, built on a throwaway project and store."""
    from nurture.api.app import create_app
    from nurture.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="nurture-docs-") as folder:
        project = Path(folder)
        (project / "nurture.toml").write_text('timezone = "UTC"\n', encoding="utf-8")
        settings = load_settings(project, database_url=f"sqlite:///{project / 'docs.db'}")
        return create_app(settings).openapi()


@functools.cache
def http_reference() -> str:
    """Every path and method: summary, parameters, body and answers; then the schemas."""
    document = openapi_document()
    link = functools.partial(anchor, "schema-")
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    overview = [
        [f"[`{method.upper()} {path}`](#{anchor('', f'{method} {path}')})", op.get("summary")]
        for path, method, op in operations
    ]
    parts = ["## Endpoints\n", table(["endpoint", "summary"], overview)]
    parts += [_operation(path, method, op, link) for path, method, op in operations]
    parts.append("## Schemas\n")
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        parts += [f"### {name} {{ #{link(name)} }}\n", schema.get("description", "") + "\n"]
        parts.append(properties(schema, link) or f"Type: {type_of(schema, link)}\n")
    return "\n".join(parts)


def _operation(path: str, method: str, operation: dict[str, Any], link: Link) -> str:
    title = f"{method.upper()} {path}"
    auth = "a bearer token" if operation.get("security") else "none (see its description)"
    parts = [
        f"### `{title}` {{ #{anchor('', f'{method} {path}')} }}\n",
        f"**{operation.get('summary', '')}.** {operation.get('description', '')}\n",
        f"Authorization: {auth}.\n",
    ]
    params = [_parameter(param, link) for param in operation.get("parameters", [])]
    parts.append(table(["parameter", "in", "required", "type", "description"], params))
    parts.append(_body(operation.get("requestBody"), link))
    answers = [
        [f"`{status}`", answer.get("description", ""), _content_type(answer.get("content"), link)]
        for status, answer in sorted(operation.get("responses", {}).items())
    ]
    parts.append(table(["status", "meaning", "body"], answers))
    return "\n".join(parts)


def _parameter(param: dict[str, Any], link: Link) -> list[str]:
    schema = param.get("schema", {})
    required = "yes" if param.get("required") else ""
    text = param.get("description", schema.get("description", ""))
    return [f"`{param['name']}`", param["in"], required, type_of(schema, link), text]


def _body(body: dict[str, Any] | None, link: Link) -> str:
    if not body:
        return ""
    lines = [f"Body ({'required' if body.get('required') else 'optional'}):"]
    lines += [
        f"`{media}`, {type_of(c.get('schema', {}), link)}" for media, c in body["content"].items()
    ]
    for content in body["content"].values():
        for name, example in content.get("examples", {}).items():
            lines.append(
                f"\nExample, {name}:\n\n```json\n{json.dumps(example['value'], indent=2)}\n```"
            )
    return "\n".join(lines) + "\n"


def _content_type(content: dict[str, Any] | None, link: Link) -> str:
    if not content:
        return ""
    return "; ".join(
        f"`{media}` {type_of(c.get('schema', {}), link)}" for media, c in content.items()
    )


MARKERS: dict[str, Callable[[], str]] = {
    "<!-- reference:cli -->": cli_reference,
    "<!-- reference:http -->": http_reference,
    "<!-- reference:sequence -->": sequence_reference,
}
