"""``for_each:`` in steps files: a shell step mapped over a list another step makes, one
instance ``id[k]`` per item whose templates read ``{{ item }}`` and ``{{ item_index }}``."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import pardag
from pardag.errors import ValidationError
from tests.support import pardag_cli

LIST = """\
  list_files:
    language: python
    code: |
      def run(inputs):
          return {items}
"""
MAPPED = """\
steps:
{list}  process:
    kind: shell
    for_each: {over}
    command: echo {{{{ item_index }}}}:{{{{ item }}}}
  report:
    language: python
    depends_on: process
    code: |
      def run(inputs):
          return [r["stdout"].strip() for r in inputs["process"]]
"""


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def flow(tmp_path: Path, items: list[str], over: str = "list_files") -> Path:
    listing = LIST.format(items=json.dumps(items))
    return write(tmp_path, MAPPED.format(list=listing, over=over))


def problems(path: Path) -> list[str]:
    """Each problem of loading ``path`` as ``line: step: message``."""
    with pytest.raises(ValidationError) as exc:
        pardag.load(path)
    out = []
    for p in exc.value.problems:
        assert p.where is not None and p.where.startswith(f"{path}:"), p
        out.append(f"{p.where.removeprefix(f'{path}:')}: {p.step}: {p.message}")
    return out


@pytest.mark.parametrize(
    "over",
    ["list_files", '"{{ steps.list_files.output }}"', "'{{steps.list_files.output}}'"],
    ids=["id", "reference", "reference-unspaced"],
)
def test_a_shell_step_runs_once_per_item_in_item_order(tmp_path: Path, over: str) -> None:
    items = [f"file{k}" for k in range(12)]
    result = pardag.load(flow(tmp_path, items, over)).run()
    assert result.status == "succeeded", result.error
    assert result.outputs["report"] == [f"{k}:file{k}" for k in range(12)]
    assert [r["stdout"] for r in result.outputs["process"]] == [f"{k}:file{k}\n" for k in range(12)]
    assert {f"process[{k}]" for k in range(12)} <= set(result.steps)
    assert result.steps["process[7]"].state == "succeeded"
    assert "process[12]" not in result.steps


def test_for_each_implies_the_dependency(tmp_path: Path) -> None:
    wf = pardag.load(flow(tmp_path, ["a"]))
    assert wf.steps["process"].depends_on == ("list_files",)
    assert wf.steps["process"].map_over == "list_files"


def test_an_empty_list_maps_to_an_empty_list(tmp_path: Path) -> None:
    result = pardag.load(flow(tmp_path, [])).run()
    assert result.status == "succeeded", result.error
    assert result.outputs["process"] == [] and result.outputs["report"] == []


def test_the_same_in_toml_and_json(tmp_path: Path) -> None:
    code = 'def run(inputs):\n    return ["x", "y"]\n'
    steps = {
        "list_files": {"language": "python", "code": code},
        "process": {"kind": "shell", "for_each": "list_files", "command": "echo {{ item }}"},
    }
    toml = (
        f'[steps.list_files]\nlanguage = "python"\ncode = """\n{code}"""\n'
        '[steps.process]\nkind = "shell"\nfor_each = "{{ steps.list_files.output }}"\n'
        'command = "echo {{ item }}"\n'
    )
    for path in (
        write(tmp_path, json.dumps({"steps": steps}), "flow.json"),
        write(tmp_path, toml, "flow.toml"),
    ):
        result = pardag.load(path).run()
        assert [r["stdout"] for r in result.outputs["process"]] == ["x\n", "y\n"], path


def test_max_concurrency_caps_the_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each instance counts the instances running beside it (marker files) while it sleeps:
    with a cap of 1 it is never more than itself."""
    (tmp_path / "running").mkdir()
    text = LIST.format(items=json.dumps(list(range(6))))
    path = write(
        tmp_path,
        f"steps:\n{text}  process:\n    kind: shell\n    for_each: list_files\n"
        "    max_concurrency: 1\n    cwd: running\n"
        "    command: touch m{{ item_index }}; sleep 0.2; ls | wc -l; rm m{{ item_index }}\n",
    )
    wf = pardag.load(path)
    monkeypatch.chdir(tmp_path)  # cwd: running is relative to the run's directory
    result = wf.run()
    assert result.status == "succeeded", result.error
    assert [int(r["stdout"]) for r in result.outputs["process"]] == [1] * 6


def test_a_list_over_max_items_fails_the_step_before_any_instance(tmp_path: Path) -> None:
    text = LIST.format(items=json.dumps(["a", "b", "c"]))
    path = write(
        tmp_path,
        f"steps:\n{text}  process:\n    kind: shell\n    for_each: list_files\n"
        "    max_items: 2\n    command: echo {{ item }}\n",
    )
    result = pardag.load(path).run()
    assert result.status == "failed"
    assert "max_items of 2" in str(result.steps["process"].error)
    assert not any(sid.startswith("process[") for sid in result.steps)


# -- problems, each at its line -----------------------------------------------------------------


def test_problems_name_the_step_field_and_line(tmp_path: Path) -> None:
    text = LIST.format(items="[1]") + (
        "  a:\n    kind: shell\n    for_each: lst_files\n    command: echo {{ item }}\n"
        '  b:\n    kind: shell\n    for_each: "{{ steps.list_files.output | first }}"\n'
        "    command: echo hi\n"
        "  c:\n    kind: shell\n    command: echo hi\n    max_concurrency: 3\n"
        "  d:\n    kind: condition\n    for_each: list_files\n    expression: 'true'\n"
        "  e:\n    kind: shell\n    for_each: [list_files, 3]\n    command: echo hi\n"
        "  f:\n    kind: shell\n    for_each: list_files\n    cache: true\n    command: echo hi\n"
    )
    found = problems(write(tmp_path, "steps:\n" + text))
    assert len(found) == 6, found
    assert found[0].startswith("9: a: maps over unknown step 'lst_files'")
    assert found[0].endswith("did you mean 'list_files'?")
    assert found[1].startswith("13: b: 'for_each' must be a step id or \"{{ steps.ID.output }}\"")
    assert "| first" in found[1]
    assert found[2] == (
        "18: c: 'max_concurrency' applies to a mapped step only; add for_each: or remove it"
    )
    assert found[3].startswith("21: d: a condition step cannot be mapped yet")
    assert found[4].startswith("25: e: 'for_each' must be a step id")
    assert found[5].startswith("29: f: cache= is not supported on a mapped step")


def test_item_outside_a_mapped_step_is_a_problem_at_its_line(tmp_path: Path) -> None:
    text = "steps:\n  a:\n    kind: shell\n    command: echo {{ item }} {{ item_index }}\n"
    found = problems(write(tmp_path, text))
    assert len(found) == 2, found
    for line, name in zip(found, ("item", "item_index"), strict=True):
        assert line.startswith(f"4: a: command reads '{name}', which only a mapped step's")
        assert "for_each:" in line


def test_item_outside_a_mapped_step_in_python_names_map_over() -> None:
    wf = pardag.Workflow("w")
    wf.add("a", kind="shell", params={"command": "echo {{ item }}"})
    with pytest.raises(ValidationError, match="map this step with map_over="):
        wf.compile()


# -- hostile items --------------------------------------------------------------------------------

HOSTILE = [
    "$(touch canary1)",
    "`touch canary2`",
    "x; touch canary3",
    "' ; touch canary4 ; '",
    '" ; touch canary5 ; "',
    "| touch canary6",
    "$(touch canary7)\n",
    "&& touch canary8 &&",
]


def test_hostile_items_are_values_not_shell_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``convert {{ item }} out/{{ item_index }}.png``: each item reaches the command as one
    word, whatever it holds; none runs."""
    wf = pardag.Workflow("w")
    wf.add("items", lambda: HOSTILE)
    command = "printf '%s|' {{ item }} out/{{ item_index }}.png"
    wf.add("convert", kind="shell", map_over="items", params={"command": command, "cwd": "."})
    monkeypatch.chdir(tmp_path)
    result = wf.run()
    assert result.status == "succeeded", result.error
    assert [r["stdout"] for r in result.outputs["convert"]] == [
        f"{item}|out/{k}.png|" for k, item in enumerate(HOSTILE)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- the CLI ------------------------------------------------------------------------------------


def test_the_cli_shows_the_map_as_one_grouped_row(tmp_path: Path) -> None:
    path = flow(tmp_path, ["a", "b", "c"])
    run = pardag_cli(tmp_path, "run", path.name)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("process")]
    assert len(rows) == 1, run.stdout
    assert re.search(r"^process\s+succeeded\b.*\b3/3 succeeded", rows[0]), rows
    assert '"0:a", "1:b", "2:c"' in run.stdout


# -- the documentation's example ----------------------------------------------------------------


def test_the_formats_page_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/formats.md's for_each example: each item printed as it is, none run."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text()
    section = page[page.index("### Mapping a step: `for_each`") :]
    found = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert found is not None
    monkeypatch.chdir(tmp_path)
    result = pardag.load(write(tmp_path, found.group(1))).run()
    assert result.status == "succeeded", result.error
    assert result.outputs["report"] == ["0=a.png\n", "1=b c.png\n", "2=$(touch pwned).png\n"]
    assert not (tmp_path / "pwned").exists()


# -- http -----------------------------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """Answers every GET with its query, as JSON."""

    def do_GET(self) -> None:
        body = json.dumps(parse_qs(urlsplit(self.path).query)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def echo() -> Iterator[str]:
    """The URL of a server on loopback that echoes each request's query."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/echo"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_a_mapped_http_step_sends_each_item(echo: str) -> None:
    """One request per item, its query built from the instance's ``{{ item }}``."""
    items = ["a b", "x&y=z", "é"]
    wf = pardag.Workflow("w")
    wf.add("items", lambda: items)
    query = {"q": "{{ item }}", "i": "{{ item_index }}"}
    wf.add("call", kind="http", map_over="items", params={"url": echo, "query": query})
    result = wf.run()
    assert result.status == "succeeded", result.error
    sent = [r["body"] for r in result.outputs["call"]]
    assert sent == [{"q": [item], "i": [str(k)]} for k, item in enumerate(items)]
