"""A workflow that crosses languages: Lua prepares, Python computes, shell archives, JS formats."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pardag
from pardag import RunStatus

FLOW = """\
name: polyglot
steps:
  prep:
    language: lua
    code: |
      function run() return {items = {1, 2, 3}, name = "pardag"} end
  compute:
    language: python
    depends_on: prep
    code: |
      def run(inputs):
          prep = inputs["prep"]
          return {"total": sum(prep["items"]), "name": prep["name"], "items": prep["items"]}
  archive:
    language: bash
    depends_on: compute
    code: |
      printf '{"seen": %s}\\n' "$INPUT_COMPUTE"
  format:
    language: js
    depends_on: archive
    code: |
      function run(inputs) {
        const seen = inputs.archive.seen;
        return `${seen.name}: ${seen.total} from ${seen.items.length} items`;
      }
"""


def test_outputs_cross_four_languages_exactly(tmp_path: Path) -> None:
    path = tmp_path / "polyglot.yaml"
    path.write_text(FLOW)
    wf = pardag.load(path)
    assert [wf.steps[s].kind for s in ("prep", "compute", "archive", "format")] == [
        "lua",
        "python",
        "shell",
        "javascript",
    ]
    result = wf.run()
    assert result.status is RunStatus.SUCCEEDED, result.error
    assert result.outputs["prep"] == {"items": [1, 2, 3], "name": "pardag"}
    assert result.outputs["compute"] == {"total": 6, "name": "pardag", "items": [1, 2, 3]}
    assert result.outputs["archive"] == {"seen": {"total": 6, "name": "pardag", "items": [1, 2, 3]}}
    assert result.outputs["format"] == "pardag: 6 from 3 items"
    assert result.final_output == "pardag: 6 from 3 items"


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "flows" / "languages.yaml"


def test_the_five_language_example_computes_what_each_runtime_should() -> None:
    """Each output is recomputed here by other means: Python for Lua's and JS's work, the
    wasm module's input measured, and ``cksum`` run on the text the shell step was given."""
    result = pardag.load(EXAMPLE).run()
    assert result.status is RunStatus.SUCCEEDED, result.error
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    stats = {"count": 9, "distinct": 8, "top": "the"}
    assert result.outputs["prepare"] == {"words": words}
    assert result.outputs["stats"] == stats
    assert result.steps["stats"].executor == "processes"
    size = len(json.dumps({"prepare": {"words": words}}, ensure_ascii=False).encode())
    assert result.outputs["measure"] == {"bytes": size}
    cksum = subprocess.run(
        ["cksum"], input=json.dumps(stats).encode(), capture_output=True, check=True
    ).stdout.split()[0]
    assert result.outputs["checksum"] == {"cksum": int(cksum)}
    assert result.final_output == (
        f'9 words, 8 distinct, most often "the"; {size} bytes of input JSON; checksum {int(cksum)}'
    )
