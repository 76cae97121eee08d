"""The README's annotated sequence is a working sequence: it validates and its test case passes."""

import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def annotated_example() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [example] = [block for block in blocks if block.startswith("# yaml-language-server")]
    return example


def test_the_readme_sequence_validates_and_passes_its_test_case(project: Path, run):
    (project / "sequences" / "consultation-follow-up.yaml").write_text(annotated_example())
    validated = run("validate")
    assert validated.exit_code == 0, validated.output
    assert "error" not in validated.output and "[unreachable]" not in validated.output
    tested = run("test")
    assert tested.exit_code == 0, tested.output
    assert "1 passed in" in tested.output
