"""A workflow that crosses languages: Lua prepares, Python computes, shell archives, JS formats."""

from __future__ import annotations

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
