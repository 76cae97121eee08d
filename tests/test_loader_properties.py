"""The YAML loader: positions of every key and item, and no input, however broken, raises."""

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nurture.errors import SpecError
from nurture.spec.compose import compose, compose_exactly
from nurture.spec.diagnostics import Diagnostic
from nurture.spec.files import CheckResult, check_files, load_sequences
from nurture.spec.loader import load_yaml

VALID = """\
name: Warm Lead Welcome
category: warm_lead
triggerConditions:
  leadScore: {min: 30, max: 70}
  leadSource: [Web Form, Lead Magnet]
send_window:
  start: 09:00
  end: 18:00
  holidays: GB
steps:
  - name: Welcome Message
    actionType: send_whatsapp_message
    actionConfig:
      message: "Hi {{ lead.first_name }}!"
  - name: Free Guide
    action_type: send_email
    action_config:
      subject: Your guide
      body: |
        Hi {{ lead.first_name }},
        here it is. {{ coach.name }}
    delay_hours: 3
tests:
  - name: a warm lead gets both
    lead: {name: Ana, score: 40, timezone: Europe/London, fields: {goal: strength}}
    start: '2025-03-03T09:00:00Z'
    events: ['+1d convert']
    expect:
      steps: [welcome-message, free-guide]
      times:
        free-guide: {after: '2025-03-03T11:00:00Z'}
"""


# Loading: plain data, and where everything is.


def test_every_key_and_list_item_has_its_line_and_column():
    document = load_yaml(VALID, "f.yaml").document
    assert document is not None
    positions = document.positions
    assert positions[("name",)] == (1, 1)
    assert positions[("triggerConditions", "leadScore")] == (4, 3)
    assert positions[("triggerConditions", "leadScore", "max")] == (4, 24)
    assert positions[("triggerConditions", "leadSource", 1)] == (5, 26)
    assert positions[("steps", 1)] == (15, 5)
    assert positions[("steps", 1, "action_config", "body")] == (19, 7)


def test_a_model_loc_finds_its_place_whatever_the_spelling():
    document = load_yaml(VALID, "f.yaml").document
    assert document.position(("trigger_conditions", "lead_score", "min")) == (4, 15)
    message = ("steps", 0, "send_whatsapp_message", "action_config", "message")
    assert document.position(message) == (14, 7)
    assert document.position(("steps", 1, "send_email", "action_config", "html")) == (17, 5)
    assert document.position(("nothing", "here")) == (1, 1)


def test_values_are_what_a_user_means():
    text = "a: 18:00\nb: 1:30.5\nc: NO\nd: yes\ne: 2025-03-01\n"
    text += "f: true\ng: 42\nh: 0.5\ni: ~\nj: '7'\n"
    assert load_yaml(text, "f.yaml").document.data == {
        "a": "18:00",
        "b": "1:30.5",
        "c": "NO",
        "d": "yes",
        "e": "2025-03-01",
        "f": True,
        "g": 42,
        "h": 0.5,
        "i": None,
        "j": "7",
    }


def test_keys_are_text_as_written():
    assert load_yaml("1: one\nno: two\n", "f.yaml").document.data == {"1": "one", "no": "two"}


def test_duplicate_keys_name_both_lines():
    loaded = load_yaml("name: a\nsteps: []\nname: b\n", "f.yaml")
    assert [str(d) for d in loaded.diagnostics] == [
        "f.yaml:3:1: duplicate key 'name' (first at line 1)"
    ]
    assert loaded.document is not None  # the rest of the file is still checked


def test_anchors_aliases_and_merge_keys():
    text = "base: &base {x: 1, y: 2}\nother:\n  <<: *base\n  y: 3\nlist: [*base]\n"
    document = load_yaml(text, "f.yaml").document
    assert document.data["other"] == {"x": 1, "y": 3}
    assert document.data["list"] == [{"x": 1, "y": 2}]
    assert document.positions[("other", "y")] == (4, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &a {b: *a}\n", "1:8: recursive alias: this value contains itself"),
        (
            "a: 1\n---\nb: 2\n",
            "2:1: found a second YAML document (---); a sequence file holds exactly one",
        ),
        ("a: !python/object x\n", "1:4: unsupported YAML tag '!python/object'"),
        ("a: !!int x\n", "1:4: invalid int 'x': invalid literal for int() with base 10: 'x'"),
        ("? [a]\n: 1\n", "1:3: a key must be plain text, not a mapping or a list"),
        ("a: \x07\n", "1:4: unacceptable character #x0007: control characters are not allowed"),
        ("a: *nowhere\n", "1:4: invalid YAML: found undefined alias 'nowhere'"),
        ("# only a comment\n", "1:1: empty file, expected a sequence mapping (name, steps, ...)"),
        ("just text\n", "1:1: expected a mapping at the top, found a single value"),
    ],
)
def test_yaml_problems_are_diagnostics(text, expected):
    loaded = load_yaml(text, "f.yaml")
    assert loaded.document is None
    assert [str(d) for d in loaded.diagnostics] == [f"f.yaml:{expected}"]


def test_a_billion_laughs_stops_at_a_limit():
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]"
        for p, n in zip("abcdefg", "bcdefgh", strict=True)
    ]
    [problem] = load_yaml("\n".join(laughs), "f.yaml").diagnostics
    assert "too many values" in problem.message


def test_load_sequences_raises_with_every_problem(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("name: [\n")
    (tmp_path / "b.yaml").write_text("name: b\n")
    with pytest.raises(SpecError) as raised:
        load_sequences([tmp_path])
    assert [d.line for d in raised.value.diagnostics] == [2, 1]
    assert "(and 1 more)" in str(raised.value)


def test_a_valid_file_keeps_its_positions(tmp_path: Path):
    (tmp_path / "seq.yaml").write_text(VALID)
    [found] = load_sequences([tmp_path])
    assert found.spec.name == "Warm Lead Welcome"
    assert found.spec.send_window.end.hour == 18
    assert found.position(("steps", 1, "action_config", "subject")) == (18, 7)


# Broken files: diagnostics, never a traceback, and quickly.


@pytest.fixture(scope="module")
def broken_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("broken") / "broken.yaml"


def check(path: Path, content: str | bytes) -> CheckResult:
    """Check one file holding `content`, and what must hold of any result."""
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    result = check_files([path])
    # YAML also breaks lines at \x85, \u2028 and \u2029, as splitlines() does.
    lines = len(content.decode("utf-8", "replace").splitlines()) + 1
    assert result.valid == (len(result.sequences) == 1)
    for diagnostic in result.diagnostics:
        assert diagnostic.file == str(path) and diagnostic.message
        assert 1 <= diagnostic.line <= lines and diagnostic.column >= 1
    return result


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"\x00\x01\x02\xff" * 100, "binary file"),
        (b"- a\n- b\n", "expected a mapping at the top, found a list"),
        (b"[" * 10_000_000, "file too large"),
        (b"[" * 999_999, "nesting too deep"),
        (b"{a: " * 249_999, "nesting too deep"),
        (b"- " * 499_999, "nesting too deep"),
        ("".join(" " * n + "a:\n" for n in range(1_400)).encode(), "nesting too deep"),
        (b"steps: [" + b"1, " * 300_000 + b"]", "too many values"),
    ],
    ids=["empty", "binary", "list", "10MB", "1MB-flow", "1MB-maps", "1MB-block", "indents", "wide"],
)
def test_broken_files_answer_quickly(broken_file: Path, content: bytes, expected: str):
    """A hostile file is refused at its limit, not parsed to the end: the bound is on this
    process's CPU (a busy machine's wall clock says nothing) and catches a blow-up, which
    takes minutes; how fast the check is, the benchmarks say."""
    started = time.process_time()
    [problem] = check(broken_file, content).diagnostics
    assert expected in problem.message
    assert time.process_time() - started < 20


BROKEN = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@BROKEN
@given(text=st.text())
def test_random_text(broken_file: Path, text: str):
    check(broken_file, text)


@BROKEN
@given(content=st.binary(max_size=2000))
def test_random_bytes(broken_file: Path, content: bytes):
    check(broken_file, content)


def _mutate(text: str, data: st.DataObject) -> str:
    lines = text.splitlines(keepends=True)
    index = data.draw(st.integers(0, len(lines) - 1))
    line = lines[index]
    mutations = ["delete", "indent", "dedent", "key", "replace", "nest", "copy"]
    mutation = data.draw(st.sampled_from(mutations))
    if mutation == "delete":
        lines[index] = ""
    elif mutation in ("indent", "dedent"):
        spaces = data.draw(st.integers(1, 6))
        lines[index] = " " * spaces + line if mutation == "indent" else line[spaces:]
    elif mutation == "key":
        key = data.draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12))
        value = data.draw(st.text(max_size=12))
        lines.insert(index, line[: len(line) - len(line.lstrip())] + f"{key}: {value}\n")
    elif mutation == "replace":
        start = data.draw(st.integers(0, len(line)))
        lines[index] = line[:start] + data.draw(st.text(max_size=8)) + line[start + 1 :]
    elif mutation == "nest":
        depth = data.draw(st.integers(1, 100_000))
        opener = data.draw(st.sampled_from(["[", "{a: ", "- "]))
        lines[index] = line.rstrip("\n") + opener * depth + "\n"
    else:
        lines.insert(index, lines[data.draw(st.integers(0, len(lines) - 1))])
    return "".join(lines)


@BROKEN
@given(data=st.data())
def test_mutated_valid_yaml(broken_file: Path, data: st.DataObject):
    text = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        text = _mutate(text, data) or "\n"
    check(broken_file, text)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(data: Any, path: tuple = ()) -> list[tuple]:
    """Every path into `data`, to replace the value at one of them."""
    below: list[tuple] = []
    if isinstance(data, dict):
        below = [p for key, value in data.items() for p in _paths(value, (*path, key))]
    elif isinstance(data, list):
        below = [p for index, value in enumerate(data) for p in _paths(value, (*path, index))]
    return [path, *below]


@BROKEN
@given(data=st.data())
def test_wrong_values_anywhere_in_a_valid_sequence(broken_file: Path, data: st.DataObject):
    document = load_yaml(VALID, "valid.yaml").document.data
    for _ in range(data.draw(st.integers(1, 3))):
        *parent, last = data.draw(st.sampled_from(_paths(document)[1:]))
        target = document
        for part in parent:
            target = target[part]
        target[last] = data.draw(values)
    check(broken_file, yaml.safe_dump(document, allow_unicode=True))


jinja_text = st.lists(
    st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", "(", ")", "[", "]", "|", ".", " ", "\n"])
    | st.sampled_from(["lead", "name", "coach", "if", "for", "endif", "x", "'", '"', "default"]),
    max_size=60,
).map("".join)


@BROKEN
@given(template=jinja_text, depth=st.integers(0, 2_000))
def test_random_templates(broken_file: Path, template: str, depth: int):
    document = load_yaml(VALID, "valid.yaml").document.data
    document["steps"][1]["action_config"]["body"] = "{{ " + "(" * depth + template
    check(broken_file, yaml.safe_dump(document, allow_unicode=True))


def _tree(node: Any) -> Any:
    """A node tree as comparable data: tag, start line and column, value."""
    if not isinstance(node, yaml.Node):
        return node
    mark = (node.tag, node.start_mark.line, node.start_mark.column)
    if isinstance(node.value, str):
        return (*mark, node.value)
    if node.value and isinstance(node.value[0], tuple):
        return (*mark, [(_tree(key), _tree(value)) for key, value in node.value])
    return (*mark, [_tree(item) for item in node.value])


@BROKEN
@given(data=st.data())
def test_the_fast_parser_reads_what_the_exact_one_reads(data: st.DataObject):
    # compose() scans with libyaml and re-reads with the pure-Python loader what libyaml
    # refuses or would mark differently: whatever compose() returns must be what PyYAML gives,
    # nodes at the same lines and columns, or its diagnostic. Only a file PyYAML refuses and
    # libyaml reads (a few corner cases, such as a tab after `>`) is not compared.
    text = VALID.replace("Ana", data.draw(st.sampled_from(["Ana", "Zoë 🌱", "李"])))
    for _ in range(data.draw(st.integers(0, 3))):
        text = _mutate(text, data) or "\n"
    fast, exact = compose(text, "f.yaml"), compose_exactly(text, "f.yaml")
    if isinstance(fast, Diagnostic) or not isinstance(exact, Diagnostic):
        assert _tree(fast) == _tree(exact)


yaml_text = st.text(
    st.sampled_from(list("ab: -[]{}\n\t'\"#&*!|>%@`,?\\\x85\u2028\ufeff\x00\x07é🌱"))
)


@BROKEN
@given(text=yaml_text)
def test_the_fast_parser_reads_odd_text_as_the_exact_one(text: str):
    # YAML's punctuation, BOMs, line breaks and control characters in any order.
    fast, exact = compose(text, "f.yaml"), compose_exactly(text, "f.yaml")
    if isinstance(fast, Diagnostic) or not isinstance(exact, Diagnostic):
        assert _tree(fast) == _tree(exact)
