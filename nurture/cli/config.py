"""`nurture config show`: the effective settings (flag > env > .env > nurture.toml > defaults)."""

from typing import Annotated, Any

import typer

from nurture.cli.context import state
from nurture.cli.output import print_json

app = typer.Typer(help="Settings: show the effective configuration.", no_args_is_help=True)


@app.command()
def show(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every setting as it takes effect, secrets masked.

    \b
    Examples:
      nurture config show
      nurture config show --json
    """
    from nurture.store.connect import masked  # SQLAlchemy: not for `config --help`

    settings = state.settings
    data = settings.model_dump(mode="json")  # a SecretStr dumps as '**********'
    data["database_url"] = masked(settings.database)
    if json:
        print_json(data)
        return
    typer.echo(f"# {settings.project_dir / 'nurture.toml'}, the environment and .env")
    for line in toml_lines(data):
        typer.echo(line)


def toml_lines(data: dict[str, Any], section: str = "") -> list[str]:
    """Settings as TOML: values first, then one table per nested section; unset as comments."""
    lines = []
    for key, value in data.items():
        if value is None:
            lines.append(f"# {key} is not set")
        elif not isinstance(value, dict):
            lines.append(f"{key} = {_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            name = f"{section}.{key}" if section else key
            lines += ["", f"[{name}]", *toml_lines(value, name)]
    return lines


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
