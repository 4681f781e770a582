"""The tutorials run: every ```python block of every docs/tutorials/*.md file, in order.

The blocks of one file share one namespace (a tutorial builds on its earlier blocks); each file gets a
fresh one. A failing block is reported with its number, its first line in the file and the traceback.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "docs" / "tutorials"
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number of the code, code) of each ```python block, in file order."""
    return [(text.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in PYTHON_BLOCK.finditer(text)]


def tutorial_files() -> list[Path]:
    return sorted(TUTORIALS.glob("*.md"))


def test_block_extraction():
    text = "intro\n```python\na = 1\n```\n```text\nnot code\n```\n```python\nb = a + 1\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "b = a + 1\n")]


def test_tutorials_exist():
    assert tutorial_files(), f"no tutorials found under {TUTORIALS}"


@pytest.mark.parametrize("path", tutorial_files(), ids=lambda p: p.name)
def test_tutorial_runs(path: Path):
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    assert blocks, f"{path.name} has no ```python blocks"
    namespace: dict = {"__name__": f"tutorial_{path.stem.replace('-', '_')}"}
    for number, (line, code) in enumerate(blocks, start=1):
        where = f"{path.name}, block {number} of {len(blocks)} (line {line})"
        try:
            exec(compile(code, f"{path.name}:block{number}", "exec"), namespace)
        except Exception as error:  # noqa: BLE001  (any failure of a block is a test failure)
            pytest.fail(
                f"{where} raised {type(error).__name__}: {error}\n{traceback.format_exc()}", pytrace=False
            )
