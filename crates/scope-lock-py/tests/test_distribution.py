"""The installed distribution is what PyPI and pip users get: its licences, the package's own
README as its description, the metadata an index shows, and the files type checkers read.

`.ci/run` runs this suite against the manylinux wheel it builds, installed into a fresh virtual
environment; the release workflow does the same with each platform's wheel.
"""

from __future__ import annotations

from importlib.metadata import distribution
from pathlib import Path

import scope_lock

from conftest import REPO

PACKAGE_DIR = REPO / "crates" / "scope-lock-py"


def test_the_installed_distribution_carries_its_licences_readme_and_typed_metadata() -> None:
    dist = distribution("scope-lock")
    files = [str(file) for file in dist.files or []]
    for licence in ("LICENSE-MIT", "LICENSE-APACHE"):
        assert any(file.endswith(f".dist-info/licenses/{licence}") for file in files), files
    metadata = dist.metadata
    assert metadata["License-Expression"] == "MIT OR Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.9"
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers, classifiers
    # The Pythons it claims start where requires-python does (abi3-py39).
    versions = [c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")]
    assert versions[0] == "3.9" and versions == sorted(versions, key=lambda v: int(v.split(".")[1])), versions
    # What PyPI shows: the package's own README, whole.
    assert metadata["Description-Content-Type"].startswith("text/markdown")
    readme = (PACKAGE_DIR / "README.md").read_text(encoding="utf-8")
    assert (metadata.get_payload() or "").strip() == readme.strip()
    package = Path(scope_lock.__file__).parent
    assert (package / "py.typed").is_file() and (package / "_native.pyi").is_file()


def test_the_package_readme_links_nothing_a_pypi_reader_cannot_follow() -> None:
    readme = (PACKAGE_DIR / "README.md").read_text(encoding="utf-8")
    assert "](../" not in readme and "](./" not in readme and "](docs/" not in readme, \
        "a relative link in the README, which PyPI shows without the repository around it"
