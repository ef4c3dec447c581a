"""The front page stays short and leads to every document; links between the documents resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*```.*?^\s*```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.M)}


def test_readme_is_short_and_links_every_doc() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 150
    linked = {m.group(1).split("#")[0] for m in LINK.finditer(readme)}
    assert {f"docs/{d.name}" for d in DOCS} <= linked
    assert {"configuration.md", "api.md", "deploy.md", "operations.md", "benchmarks.md", "architecture.md"} <= {
        d.name for d in DOCS}


def test_relative_links_and_anchors_resolve() -> None:
    broken = []
    for doc in [ROOT / "README.md", *DOCS]:
        text = FENCE.sub("", doc.read_text(encoding="utf-8"))
        for target in (m.group(1) for m in LINK.finditer(text)):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (doc.parent / file_part).resolve() if file_part else doc
            if not dest.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert not broken, broken


def test_slug_matches_github() -> None:
    assert slug("Runbook: the database is down") == "runbook-the-database-is-down"
    assert slug("Using MongoDB Atlas or another external MongoDB") == "using-mongodb-atlas-or-another-external-mongodb"
    assert slug("`make bench` figures") == "make-bench-figures"
