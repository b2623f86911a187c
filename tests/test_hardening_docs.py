"""README and docs: for users, with links that resolve inside the repository.

Before the hardening README was a 441-line status report with issue numbers and links to
``shared/...`` files that are not in a user's checkout, and ``pyproject.toml``'s license table
made setuptools warn on every install.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"```.*?```", re.S)


def _links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text())
    return [a or b for a, b in _LINK.findall(text)]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page."""
    out = set()
    for line in _FENCE.sub("", page.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves_inside_the_repository(page: Path) -> None:
    links = _links(page)
    for link in links:
        if re.match(r"[a-z]+:", link):  # http:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.is_relative_to(ROOT), f"{page.name}: {link} leaves the repository"
        assert target.exists(), f"{page.name}: {link} does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"{page.name}: no heading #{anchor} in {path}"


def test_readme_is_for_users() -> None:
    text = (ROOT / "README.md").read_text()
    assert not re.search(r"\bissue\s*#?\d", text, re.I), "no issue numbers in README"
    assert "shared/" not in text
    assert not [u for u in _links(ROOT / "README.md") if re.match(r"[a-z]+:", u)], \
        "README links only inside the repository"
    assert not re.search(r"<https?://", text)
    assert "bash scripts/quickstart.sh" in text and "bash scripts/test.sh" in text
    assert len(text.splitlines()) < 150
    assert "![" in text  # one picture
    section = text.split("## What the model can and cannot do today\n", 1)[1].split("\n## ")[0]
    # the model's scores beside the peers a user would pick instead, from the scorecard command
    assert "kgvsf evaluate-weights" in section and "peers" in section
    for doc in ("cli", "model", "schema", "world", "evaluation", "ingest", "scale"):
        assert f"(docs/{doc}.md)" in text


def test_docs_have_no_links_outside_the_repository_checkout() -> None:
    for page in PAGES:
        assert "shared/" not in page.read_text(), page.name


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_the_license_is_an_spdx_string_with_a_setuptools_that_reads_it() -> None:
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"
    (req,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    assert int(re.search(r">=(\d+)", req).group(1)) >= 77  # PEP 639 license strings
    assert any(t.startswith("hypothesis") for t in data["project"]["optional-dependencies"]["test"])
