"""The broken-files corpus: every file in broken/ must fail to load with a pardag error.

Each must raise ``ValidationError`` (never another exception, never a hang) whose problems
name the file, and the line where the format can tell it. ``EXPECTED`` pins the line and a
piece of the message for the files listed; a file not listed must still fail cleanly, with a
line (unless it is in ``NO_LINE``). Add a file to broken/ to add a case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pardag
from pardag.errors import ValidationError
from pardag.formats.document import MAX_BYTES

BROKEN = Path(__file__).resolve().parent / "broken"
FILES = sorted(p for p in BROKEN.iterdir() if p.is_file())

EXPECTED: dict[str, tuple[int | None, str]] = {
    # the other formats
    "nodegraph_bad_edge.json": (8, "source 'aa' is not a node id; did you mean 'a'?"),
    "nodegraph_no_type.json": (4, "node 'mystery' has no type"),
    "nodegraph_cycle.json": (4, "is part of a cycle"),
    "nodegraph_nodes_not_list.json": (2, "'nodes' must be a list"),
    "shellflow_unknown_field.yaml": (7, "unknown field 'depend'; did you mean 'depends'?"),
    "shellflow_unknown_dependency.yaml": (7, "did you mean 'compile'?"),
    "shellflow_duplicate_name.yaml": (4, "the name 'compile' is already used"),
    "shellflow_bad_retry.yaml": (4, "limit must be a whole number >= 0"),
    "tasktree_duplicate_id.json": (6, "Duplicate task ID: build"),
    "tasktree_unknown_function.json": (4, "function 'cli_comand' is unknown"),
    "tasktree_bad_next.json": (5, "next_tasks must be a list"),
    "tasktree_function_name_list.json": (1, "function ['cli_command'] is unknown"),
    "tasktree_empty_id_reference.json": (1, "each task needs an id (a non-empty string)"),
    "nodegraph_condition_unlexable.json": (4, "invalid syntax: unexpected 'b'"),
    "wasm_module_directory.yaml": (
        2,
        "/formats/broken': it is a directory, not a regular file; give the path",
    ),
    # malformed syntax
    "yaml_tab_indent.yaml": (4, "indent with spaces"),
    "yaml_unclosed_bracket.yaml": (6, "malformed YAML"),
    "yaml_unclosed_quote.yaml": (7, "malformed YAML"),
    "yaml_bad_indent.yaml": (4, "malformed YAML"),
    "json_trailing_comma.json": (4, "malformed JSON"),
    "json_unclosed.json": (4, "malformed JSON"),
    "json_single_quotes.json": (2, "malformed JSON"),
    "json_comment.json": (2, "malformed JSON"),
    "json_nan.json": (3, "NaN is not valid JSON"),
    "json_huge_number.json": (2, "malformed JSON"),
    "toml_unclosed_table.toml": (1, "malformed TOML"),
    "toml_bare_value.toml": (2, "malformed TOML"),
    "toml_unterminated_string.toml": (4, "malformed TOML"),
    "toml_duplicate_key.toml": (4, "malformed TOML"),
    # duplicate keys: both lines
    "yaml_duplicate_step.yaml": (7, "duplicate key 'fetch' (lines 2 and 7)"),
    "yaml_duplicate_field.yaml": (6, "duplicate key 'command' (lines 4 and 6)"),
    "json_duplicate_key.json": (5, "duplicate key 'a' (lines 3 and 5)"),
    # unsafe YAML
    "yaml_python_object_tag.yaml": (4, "'!!python/object/apply:os.system' is not allowed"),
    "yaml_python_name_tag.yaml": (4, "'!!python/name:os.system' is not allowed"),
    "yaml_python_object_step.yaml": (2, "'!!python/object:pardag.model.Step' is not allowed"),
    "yaml_custom_tag.yaml": (4, "'!secret' is not allowed"),
    "yaml_alias_bomb.yaml": (7, "alias bomb"),
    "yaml_recursive_alias.yaml": (4, "alias *a refers to a mapping or list that contains it"),
    "yaml_undefined_alias.yaml": (5, "alias *defaults is not defined"),
    "yaml_deep_nesting.yaml": (3, "nested more than 100 levels"),
    "json_deep_nesting.json": (2, "nested more than 100 levels"),
    # not text, not a mapping, nothing in it
    "binary_garbage.yaml": (1, "is not UTF-8 text"),
    "latin1.yaml": (2, "is not UTF-8 text (byte 0xe9"),
    "utf16.json": (1, "is UTF-16 text; save it as UTF-8"),
    "yaml_control_chars.yaml": (4, "a character YAML does not allow"),
    "yaml_top_level_list.yaml": (1, "the top level must be a mapping"),
    "yaml_top_level_string.yaml": (1, "the top level must be a mapping"),
    "json_top_level_array.json": (1, "the top level must be a mapping"),
    "yaml_empty.yaml": (None, "is empty"),
    "json_empty.json": (None, "is empty"),
    "toml_empty.toml": (None, "is empty"),
    "yaml_only_comments.yaml": (None, "holds no data"),
    "yaml_two_documents.yaml": (3, "more than one YAML document"),
    "yaml_no_steps.yaml": (None, "is not a workflow pardag can read"),
    # the native format's own checks
    "language_unknown.yaml": (2, "language 'cobol' is unknown; use one of lua, shell, bash"),
    "python_code_syntax.yaml": (2, "Python syntax error in 'code' line 1: invalid syntax"),
    "unknown_fields.yaml": (2, "unknown field 'exection' at the top level; did you mean"),
    "json_unknown_field.json": (4, "unknown field 'dependson'; did you mean 'depends_on'?"),
    "toml_unknown_field.toml": (4, "unknown field 'timout'; did you mean 'timeout'?"),
    "wrong_types.yaml": (2, "'max_concurrency' must be an integer >= 0, got 'many'"),
    "infinite_timeout.yaml": (5, "'timeout' must be a duration"),
    "unknown_kind.yaml": (3, "kind 'htpp' is unknown; did you mean 'http'?"),
    "kind_bash.yaml": (3, "kind 'bash' is unknown; did you mean 'shell'?"),
    "json_kind_http_request.json": (4, "kind 'http_request' is unknown; did you mean 'http'?"),
    # the model's checks, placed at their step (or dependency)
    "cycle.yaml": (None, "is part of a cycle"),
    "toml_cycle.toml": (None, "is part of a cycle"),
    "unknown_dependency.yaml": (10, "depends on unknown step 'transfrom'"),
    "bad_step_id.yaml": (2, "the id may use only letters"),
    "undeclared_pool.yaml": (4, "uses pool 'warehouse', which is not declared"),
    "bad_when.yaml": (5, "when"),
    "missing_function.yaml": (2, "no_such_module_anywhere"),
}
"""file name -> (the line of its first problem, or None for any; part of that message)."""

NO_LINE = {name for name, (line, _) in EXPECTED.items() if line is None} - {
    "cycle.yaml",
    "toml_cycle.toml",
}
"""Files whose problem belongs to the whole file, so no line can be given."""


def load_error(path: Path) -> ValidationError:
    with pytest.raises(ValidationError) as exc:
        pardag.load(path)
    return exc.value


def test_the_corpus_is_big_enough() -> None:
    assert len(FILES) >= 25
    for ext in ("yaml", "json", "toml"):
        assert sum(p.suffix == f".{ext}" for p in FILES) >= 5
    missing = sorted(set(EXPECTED) - {p.name for p in FILES})
    assert not missing, f"EXPECTED names files not in broken/: {missing}"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_broken_file_fails_cleanly(path: Path) -> None:
    error = load_error(path)
    assert error.problems, "a ValidationError must carry its problems"
    assert str(path) in str(error)
    first = error.problems[0]
    assert first.where is not None and first.where.startswith(str(path)), first
    line = first.where.removeprefix(str(path)).removeprefix(":")
    if path.name not in NO_LINE:
        assert line.isdigit(), f"{path.name}: no line in {first.where!r}"
    expected = EXPECTED.get(path.name)
    if expected is not None:
        want_line, words = expected
        if want_line is not None:
            assert line == str(want_line), str(error)
        assert words in first.message, str(error)


def test_a_cycle_names_the_line_of_a_step_on_it() -> None:
    error = load_error(BROKEN / "cycle.yaml")
    lines = {"extract": 2, "transform": 3, "load": 4}
    (problem,) = error.problems
    assert problem.step in lines
    assert problem.where == f"{BROKEN / 'cycle.yaml'}:{lines[problem.step]}"


def test_the_python_tag_ran_nothing() -> None:
    load_error(BROKEN / "yaml_python_object_tag.yaml")
    assert not Path("/tmp/pardag-pwned").exists()


@pytest.mark.timeout(60)
def test_a_huge_file_is_refused_without_parsing_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    step = "  s{n}: {{kind: shell, command: echo {n}}}\n"
    with path.open("w") as f:
        f.write("steps:\n")
        n = 0
        while f.tell() <= MAX_BYTES:
            f.write("".join(step.format(n=n + i) for i in range(1000)))
            n += 1000
    error = load_error(path)
    assert [str(p) for p in error.problems] == [f"{path}: is larger than 10 MiB; split it up"]
