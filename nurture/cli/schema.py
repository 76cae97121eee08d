"""`nurture schema`: the JSON Schema of a sequence file, for editors (yaml-language-server)."""

from pathlib import Path
from typing import Annotated

import typer

from nurture.cli.output import print_result
from nurture.errors import NurtureError
from nurture.spec.schema import sequence_json_schema_text


def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the schema to this file (- or none: stdout)."),
    ] = None,
    json: Annotated[
        bool, typer.Option("--json", help="With --output: print the file written as JSON.")
    ] = False,
) -> None:
    """Print the JSON Schema of a sequence file (point yaml-language-server at it).

    \b
    Examples:
      nurture schema -o schema/sequence.schema.json
      nurture schema > sequence.schema.json
    """
    text = sequence_json_schema_text()
    if output is None or str(output) == "-":
        typer.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as problem:
        raise NurtureError(f"cannot write {output}: {problem.strerror or problem}") from None
    print_result({"path": str(output)}, json=json, message=f"wrote {output}")
