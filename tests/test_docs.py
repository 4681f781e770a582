"""The tutorials run, their sample outputs are what the code prints, and the documentation site builds.

Every ```python block of every docs/tutorials/*.md file runs, in order. The blocks of one file share one
namespace (a tutorial builds on its earlier blocks); each file gets a fresh one. A failing block is
reported with its number, its first line in the file and the traceback. A line ``print(...)  # text``
states its output: the test compares ``text`` with what the print writes (prose goes on its own comment
line). The site (``mkdocs build --strict``) is built into a temporary folder and its pages are read.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "docs" / "tutorials"
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
STATED_PRINT = re.compile(r"^(\s*)print\((.*)\)\s+#\s(.*)$")  # print(...)  # the output it writes


def with_output_checks(code: str, first_line: int) -> str:
    """``code`` with each ``print(...)  # text`` replaced by a call recording (line, printed, text)."""
    lines = []
    for offset, line in enumerate(code.splitlines()):
        match = STATED_PRINT.match(line)
        if match:
            indent, arguments, stated = match.groups()
            line = f"{indent}__stated__.append(({first_line + offset}, __printed__({arguments}), {stated.strip()!r}))"
        lines.append(line)
    return "\n".join(lines) + "\n"


def printed(*args, **kwargs) -> str:
    buffer = io.StringIO()
    print(*args, file=buffer, **kwargs)
    return buffer.getvalue().rstrip("\n")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number of the code, code) of each ```python block, in file order."""
    return [(text.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in PYTHON_BLOCK.finditer(text)]


def tutorial_files() -> list[Path]:
    return sorted(TUTORIALS.glob("*.md"))


def test_output_checks_rewrite_only_stated_prints():
    code = "x = 2\nprint(x, x + 1)   # 2 3\nprint(x)\n    print(x)  # 2\n"
    rewritten = with_output_checks(code, 10)
    assert "__stated__.append((11, __printed__(x, x + 1), '2 3'))" in rewritten
    assert "\nprint(x)\n" in rewritten and "    __stated__.append((13, __printed__(x), '2'))" in rewritten
    assert printed(1.5, "a", sep="|") == "1.5|a"


def test_block_extraction():
    text = "intro\n```python\na = 1\n```\n```text\nnot code\n```\n```python\nb = a + 1\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "b = a + 1\n")]


def test_tutorials_exist():
    assert tutorial_files(), f"no tutorials found under {TUTORIALS}"


@pytest.mark.parametrize("path", tutorial_files(), ids=lambda p: p.name)
def test_tutorial_runs(path: Path):
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    assert blocks, f"{path.name} has no ```python blocks"
    namespace: dict = {"__name__": f"tutorial_{path.stem.replace('-', '_')}", "__printed__": printed,
                       "__stated__": []}
    for number, (line, code) in enumerate(blocks, start=1):
        where = f"{path.name}, block {number} of {len(blocks)} (line {line})"
        try:
            exec(compile(with_output_checks(code, line), f"{path.name}:block{number}", "exec"), namespace)
        except Exception as error:  # noqa: BLE001  (any failure of a block is a test failure)
            pytest.fail(
                f"{where} raised {type(error).__name__}: {error}\n{traceback.format_exc()}", pytrace=False
            )
    wrong = [f"{path.name}, line {line}: prints {got!r}, the text says {stated!r}"
             for line, got, stated in namespace["__stated__"] if got.strip() != stated]
    assert not wrong, "\n".join(wrong)


def test_documentation_site_builds(tmp_path):
    """``mkdocs build --strict`` (no broken link, no missing page, every API page rendered); the built
    index and a tutorial page hold their content."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**os.environ,
                                                                           "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "certifies bounds on general nonlinear computation graphs" in index
    tutorial = (site / "tutorials" / "01-first-bounds" / "index.html").read_text(encoding="utf-8")
    assert "Tutorial 1: first certified bounds" in tutorial and "m.interval" in tutorial
    api = (site / "api" / "graphver" / "index.html").read_text(encoding="utf-8")
    assert "interval" in api and "verify" in api  # generated from Model's docstrings
