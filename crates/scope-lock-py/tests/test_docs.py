"""The Python examples of the documentation run as they are written.

The workspace README, the package's own README and docs/python.md show code that users copy;
each ```python block of them runs here, in an empty project directory, and must leave no lock
behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scope_lock import LockManager

REPOSITORY = Path(__file__).resolve().parents[3]
DOCUMENTS = ("README.md", "crates/scope-lock-py/README.md", "docs/python.md")
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def examples_of(document: str) -> list[str]:
    return PYTHON_BLOCK.findall((REPOSITORY / document).read_text(encoding="utf-8"))


@pytest.mark.parametrize("document", DOCUMENTS)
def test_each_document_shows_a_python_example(document: str) -> None:
    assert examples_of(document), f"{document} has no ```python block"


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(source, id=f"{document}#{number}")
        for document in DOCUMENTS
        for number, source in enumerate(examples_of(document), 1)
    ],
)
def test_a_documented_example_runs_and_releases_what_it_took(project: Path, source: str) -> None:
    exec(compile(source, "<documented example>", "exec"), {})
    assert LockManager().list_locks() == [], "the example left a lock held"
