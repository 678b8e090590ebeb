"""Reading workflow files safely: plain data, the line of every key, limits, clear errors."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pardag.errors import ValidationError
from pardag.formats import yaml_lines
from pardag.formats.document import (
    MAX_BYTES,
    MAX_DEPTH,
    Document,
    parse_document,
    read_document,
)


def problem_of(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    """(where, message) of the one problem an error carries."""
    assert len(exc.value.problems) == 1, exc.value.problems
    p = exc.value.problems[0]
    assert p.where is not None
    return p.where, p.message


def parse_error(text: str, fmt: str, path: str = "flow") -> tuple[str, str]:
    with pytest.raises(ValidationError) as exc:
        parse_document(text, f"{path}.{fmt}", fmt)
    return problem_of(exc)


# -- lines ------------------------------------------------------------------------------------

YAML = """\
# a comment
name: demo
steps:
  fetch:
    kind: shell
    depends_on:
      - a
      - b
  load: {depends_on: [fetch]}
"""


def test_yaml_records_the_line_of_every_key_and_list_item() -> None:
    doc = parse_document(YAML, "flow.yaml", "yaml")
    assert doc.data["steps"]["fetch"]["depends_on"] == ["a", "b"]
    assert doc.lines[("name",)] == 2
    assert doc.lines[("steps", "fetch")] == 4
    assert doc.lines[("steps", "fetch", "kind")] == 5
    assert doc.lines[("steps", "fetch", "depends_on", 0)] == 7
    assert doc.lines[("steps", "fetch", "depends_on", 1)] == 8
    assert doc.lines[("steps", "load", "depends_on", 0)] == 9
    assert doc.where("steps", "fetch", "depends_on", 1) == "flow.yaml:8"
    # a key without a line of its own falls back to its nearest ancestor
    assert doc.where("steps", "fetch", "retry", "delay") == "flow.yaml:4"
    assert doc.where("nowhere") == "flow.yaml"
    assert doc.format == "yaml"


def test_json_records_the_line_of_every_key_and_list_item() -> None:
    text = '{\n  "steps": {\n    "fetch": {"kind": "shell",\n      "depends_on": [\n'
    text += '        "a",\n        "b"]},\n    "x\\"y": {}\n  }\n}\n'
    doc = parse_document(text, "flow.json", "json")
    assert doc.data["steps"]["fetch"]["depends_on"] == ["a", "b"]
    assert doc.lines[("steps",)] == 2
    assert doc.lines[("steps", "fetch")] == 3
    assert doc.lines[("steps", "fetch", "kind")] == 3
    assert doc.lines[("steps", "fetch", "depends_on")] == 4
    assert doc.lines[("steps", "fetch", "depends_on", 0)] == 5
    assert doc.lines[("steps", "fetch", "depends_on", 1)] == 6
    assert doc.lines[("steps", 'x"y')] == 7  # escapes in keys are decoded


def test_toml_records_the_lines_of_tables_and_keys() -> None:
    text = (
        'name = "demo"\n'
        "[execution]\n"
        "pools = { db = 2 }\n"
        "[steps.fetch]\n"
        'kind = "shell"\n'
        'command = """\n'
        "fake = 1\n"
        '"""\n'
        "[steps.fetch.retry]\n"
        "retries = 3\n"
        '[steps."a.b"]\n'
        "when = 'x'\n"
    )
    doc = parse_document(text, "flow.toml", "toml")
    assert doc.data["steps"]["fetch"]["command"] == "fake = 1\n"
    assert doc.lines[("name",)] == 1
    assert doc.lines[("execution", "pools")] == 3
    assert doc.lines[("steps", "fetch")] == 4
    assert doc.lines[("steps", "fetch", "kind")] == 5
    assert ("steps", "fetch", "fake") not in doc.lines  # inside a multi-line string
    assert doc.lines[("steps", "fetch", "retry", "retries")] == 10
    assert doc.lines[("steps", "a.b", "when")] == 12


def test_toml_dates_become_iso_strings_like_in_yaml() -> None:
    doc = parse_document(
        "[params]\nday = 2024-05-01\nat = 2024-05-01T10:00:00Z\n", "f.toml", "toml"
    )
    assert doc.data["params"] == {"day": "2024-05-01", "at": "2024-05-01T10:00:00+00:00"}
    yaml_doc = parse_document("params: {day: 2024-05-01}\n", "f.yaml", "yaml")
    assert yaml_doc.data["params"] == {"day": "2024-05-01"}


def test_yaml_keys_are_kept_as_written_and_values_typed() -> None:
    doc = parse_document("on: true\n1: 2.5\nnull: ~\nx: '3'\n", "f.yaml", "yaml")
    assert doc.data == {"on": True, "1": 2.5, "null": None, "x": "3"}


def test_yaml_values_follow_the_yaml_1_2_core_schema() -> None:
    text = (
        "steps: [yes, no, on, off, NO, true, False, ~, null, 1, -2, 0x1F, 0o17, 010, 1:30,"
        " 1.5, .5, 1e3, -.inf, 1_000, '3', !!str 3, !!float 2, !!int '7', 2024-01-01]\n"
    )
    values = parse_document(text, "f.yaml", "yaml").data["steps"]
    assert values == [
        *("yes", "no", "on", "off", "NO"),  # not booleans (no "Norway problem")
        *(True, False, None, None),
        *(1, -2, 31, 15, 10, "1:30"),  # no YAML 1.1 sexagesimal numbers
        *(1.5, 0.5, 1000.0, float("-inf"), "1_000", "3", "3", 2.0, 7, "2024-01-01"),
    ]
    assert [type(v) for v in values[5:7]] == [bool, bool]
    where, message = parse_error("steps: {}\nx: !!int seven\n", "yaml")
    assert (where, message) == ("flow.yaml:2", "'seven' is not a valid !!int")


def test_yaml_anchors_aliases_and_merge_keys() -> None:
    text = (
        "defaults: &defaults {retry: 2, timeout: 5s}\n"
        "steps:\n"
        "  a:\n"
        "    <<: *defaults\n"
        "    timeout: 9s\n"
        "  b: *defaults\n"
        "  c: {<<: [{x: 1}, {x: 2, y: 3}]}\n"
    )
    doc = parse_document(text, "f.yaml", "yaml")
    steps = doc.data["steps"]
    assert steps["a"] == {"retry": 2, "timeout": "9s"}  # explicit keys win over merged ones
    assert steps["b"] == {"retry": 2, "timeout": "5s"}
    assert steps["c"] == {"x": 1, "y": 3}  # the first merged mapping wins
    steps["b"]["retry"] = 7  # expanded aliases are copies: changing one changes no other
    assert doc.data["defaults"]["retry"] == 2
    assert doc.lines[("steps", "a", "timeout")] == 5


def test_a_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_bytes(b"\xef\xbb\xbfsteps: {}\n")
    assert read_document(path).data == {"steps": {}}


# -- refused files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "text", "line", "words"),
    [
        ("yaml", "steps:\n  a: 1\n\tb: 2\n", 3, "tab"),
        ("yaml", "steps: [a, b\nname: x\n", 2, "malformed YAML"),
        ("yaml", "steps:\n  a: {x: 1\n", 3, "malformed YAML"),
        ("json", '{\n  "steps": {\n    "a": 1,\n  }\n}', 4, "malformed JSON"),
        ("json", '{\n  "steps": [1, 2\n}', 3, "malformed JSON"),
        ("toml", "[steps]\na = \n", 2, "malformed TOML"),
        ("toml", "[steps\n", 1, "malformed TOML"),
    ],
)
def test_malformed_files_name_the_line(fmt: str, text: str, line: int, words: str) -> None:
    where, message = parse_error(text, fmt)
    assert where == f"flow.{fmt}:{line}"
    assert words in message


@pytest.mark.parametrize(
    ("fmt", "text", "lines"),
    [
        ("yaml", "steps:\n  a: {}\n  b: {}\n  a: {}\n", (2, 4)),
        ("yaml", "x: 1\nsteps: {}\nx: 2\n", (1, 3)),
        ("json", '{"steps": {\n "a": {},\n "a": {}}}', (2, 3)),
        ("toml", "a = 1\na = 2\n", (2, 2)),
    ],
)
def test_duplicate_keys_name_both_lines(fmt: str, text: str, lines: tuple[int, int]) -> None:
    where, message = parse_error(text, fmt)
    assert where == f"flow.{fmt}:{lines[1]}"
    if fmt != "toml":  # tomllib says "Cannot overwrite a value" at the second one
        assert f"duplicate key {'a' if 'a' in text else 'x'!r}" in message
        assert f"lines {lines[0]} and {lines[1]}" in message


@pytest.mark.parametrize(
    "text",
    [
        "steps: {}\nx: !!python/object/apply:os.system ['echo pwned']\n",
        "steps: {}\nx: !!python/name:os.system\n",
        "steps: {}\nx: !!python/object:collections.OrderedDict {}\n",
        "steps: {}\nx: !custom 3\n",
        "steps: {}\nx: !!binary aGVsbG8=\n",
    ],
)
def test_object_tags_are_refused_with_their_line(text: str) -> None:
    where, message = parse_error(text, "yaml")
    assert where == "flow.yaml:2"
    assert "is not allowed" in message and "remove the tag" in message


def test_an_alias_bomb_is_refused_not_expanded() -> None:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    where, message = parse_error(text, "yaml")
    assert "alias bomb" in message
    assert where.startswith("flow.yaml:")


def test_many_small_aliases_are_refused_too() -> None:
    text = "a: &a 1\nlist:\n" + "  - *a\n" * 1001
    where, message = parse_error(text, "yaml")
    assert "aliases" in message
    assert where == "flow.yaml:1003"  # the 1001st reference


def test_text_repeated_by_aliases_is_capped() -> None:
    """A few hundred kilobytes of text, anchored once and aliased a hundred times, is tens of
    megabytes read (the 9.4 MB file of issue 13 §8 became 8 GiB). Keys count too."""
    big = "x" * 200_000
    text = f'a: &a "{big}"\nlist:\n' + "  - *a\n" * 100
    where, message = parse_error(text, "yaml")
    assert where == "flow.yaml:55"  # the 53rd reference (line 55) passes 10 MiB
    assert "aliases repeat more than 10 MiB of text" in message and "alias bomb" in message
    long_keys = "".join(f"  k{i}{'x' * 1000}: 1\n" for i in range(200))  # a key: < 1024
    keys = f"m: &m\n{long_keys}list:\n" + "  - *m\n" * 100
    assert "more than 10 MiB" in parse_error(keys, "yaml")[1]
    merged = f"d: &d {{k: {big}}}\n" + "".join(f"s{i}: {{<<: *d}}\n" for i in range(100))
    assert "more than 10 MiB" in parse_error(merged, "yaml")[1]


def test_ordinary_anchors_stay_well_under_the_text_cap() -> None:
    defaults = "defaults: &d {kind: shell, retry: 3, timeout: 10s, env: {A: '" + "y" * 900 + "'}}\n"
    text = (
        defaults + "steps:\n" + "".join(f"  s{i}: {{<<: *d, command: echo}}\n" for i in range(999))
    )
    doc = parse_document(text, "flow.yaml", "yaml")
    assert doc.data["steps"]["s998"]["env"]["A"] == "y" * 900


def test_a_file_of_aliased_strings_is_refused_before_it_takes_memory(tmp_path: Path) -> None:
    """The attack of issue 13 §8, run for real under a 2 GiB address-space cap: a 9 MB file
    whose 999 aliases repeat one 9 MB string validated, then ``pardag run`` needed more than
    8 GiB. Now both commands refuse it, naming the file, the line and the cap."""
    big = "x" * 9_000_000
    refs = ", ".join(["*a"] * 999)
    (tmp_path / "bomb.yaml").write_text(
        f'name: bomb\nparams:\n  a: &a "{big}"\n  b: [{refs}]\n'
        "steps:\n  s:\n    kind: shell\n    command: echo hi\n"
    )

    def capped() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    for command in ("validate", "run"):
        done = subprocess.run(
            [sys.executable, "-m", "pardag", command, "bomb.yaml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=capped,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: bomb.yaml:4: aliases repeat more than 10 MiB")


def test_an_alias_may_not_refer_to_its_own_collection() -> None:
    where, message = parse_error("steps: &s {a: *s}\n", "yaml")
    assert where == "flow.yaml:1" and "contains it" in message
    where, message = parse_error("steps: {}\nx: *nope\n", "yaml")
    assert where == "flow.yaml:2" and "*nope is not defined" in message


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_deep_nesting_is_refused_with_its_line(fmt: str) -> None:
    depth = MAX_DEPTH + 1
    text = '{"steps": {}, "x":\n' + "[" * depth + "]" * depth + "}"
    where, message = parse_error(text, fmt)
    assert where == f"flow.{fmt}:2"
    assert f"more than {MAX_DEPTH} levels" in message


def test_nesting_up_to_the_limit_is_fine() -> None:
    inner = MAX_DEPTH - 1  # the top-level mapping is the first level
    text = '{"x": ' + "[" * inner + "]" * inner + "}"
    for fmt in ("yaml", "json"):
        value, depth = parse_document(text, f"f.{fmt}", fmt).data["x"], 0
        while isinstance(value, list):
            value, depth = (value[0] if value else None), depth + 1
        assert depth == inner


@pytest.mark.parametrize("loader", ["CSafeLoader", "SafeLoader"])
def test_very_deep_nesting_never_overflows_the_stack(
    loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libyaml (PyYAML >= 6.0.4) refuses deep flow nesting in its own words before pardag's
    # builder sees it; the pure-Python parser does not. Either way the message is pardag's.
    if not hasattr(yaml, loader):
        pytest.skip(f"this PyYAML has no {loader}")
    monkeypatch.setattr(yaml_lines, "_Loader", getattr(yaml, loader))
    for text, line in (("[" * 200_000, 1), ("steps: {}\nx:\n  " + "{a: " * 5_000, 3)):
        where, message = parse_error(text, "yaml")
        assert (where, message) == (
            f"flow.yaml:{line}",
            f"is nested more than {MAX_DEPTH} levels deep; flatten it",
        )
    where, message = parse_error("[" * 200_000, "json")
    assert where == "flow.json:1" and f"more than {MAX_DEPTH} levels" in message
    _, message = parse_error("x = " + "[" * 50_000 + "]" * 50_000, "toml")
    assert f"more than {MAX_DEPTH} levels" in message


def test_deep_toml_tables_are_refused() -> None:
    header = ".".join(f"k{n}" for n in range(MAX_DEPTH + 1))
    where, message = parse_error(f"[{header}]\nx = 1\n", "toml")
    assert f"more than {MAX_DEPTH} levels" in message
    assert where == "flow.toml:1"


def test_nan_is_not_json() -> None:
    _, message = parse_error('{"steps": {}, "x": NaN}', "json")
    assert "NaN is not valid JSON" in message


@pytest.mark.parametrize(
    ("fmt", "text", "words"),
    [
        ("yaml", "", "is empty"),
        ("yaml", "  \n\n", "is empty"),
        ("yaml", "# just a comment\n", "holds no data"),
        ("yaml", "- a\n- b\n", "not a list"),
        ("yaml", "hello\n", "not a string"),
        ("json", "[1, 2]", "not a list"),
        ("json", "42", "not a number (42)"),
        ("yaml", "steps: {}\n---\nsteps: {}\n", "more than one YAML document"),
        ("yaml", "? [a, b]\n: 1\n", "must be a plain value"),
    ],
)
def test_files_that_are_not_a_mapping_say_so(fmt: str, text: str, words: str) -> None:
    _, message = parse_error(text, fmt)
    assert words in message


def test_binary_and_non_utf8_files(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_bytes(b"steps:\n  a: caf\xe9\n")
    with pytest.raises(ValidationError) as exc:
        read_document(path)
    assert problem_of(exc) == (
        f"{path}:2",
        "is not UTF-8 text (byte 0xe9 on this line); save it as UTF-8",
    )
    path.write_bytes("steps: {}\n".encode("utf-16"))
    with pytest.raises(ValidationError) as exc:
        read_document(path)
    assert "UTF-16" in problem_of(exc)[1]
    path.write_bytes(b"steps: {}\nx: \x00\x01\x02\n")
    with pytest.raises(ValidationError) as exc:
        read_document(path)
    assert problem_of(exc)[0] == f"{path}:2"


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:
        f.write("steps:\n")
        line = "  # " + "x" * 1000 + "\n"
        f.write(line * (MAX_BYTES // len(line) + 1))
    with pytest.raises(ValidationError) as exc:
        read_document(path)
    assert problem_of(exc) == (str(path), "is larger than 10 MiB; split it up")


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as exc:
        read_document(tmp_path / "missing.yaml")
    assert "file not found" in problem_of(exc)[1]
    with pytest.raises(ValidationError) as exc:
        read_document(tmp_path)
    assert "is a directory" in problem_of(exc)[1]


def test_the_format_comes_from_the_extension(tmp_path: Path) -> None:
    for name, text in [("f.yml", "a: 1\n"), ("f.JSON", '{"a": 1}'), ("f.toml", "a = 1\n")]:
        (tmp_path / name).write_text(text)
        doc = read_document(tmp_path / name)
        assert isinstance(doc, Document) and doc.data == {"a": 1}
    (tmp_path / "f.txt").write_text("a: 1\n")
    assert read_document(tmp_path / "f.txt").format == "yaml"
    # a JSON-only construct in a .toml file is a TOML error
    (tmp_path / "g.toml").write_text('{"a": 1}')
    with pytest.raises(ValidationError, match="malformed TOML"):
        read_document(tmp_path / "g.toml")
