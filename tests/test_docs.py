"""The documentation a newcomer reads: no dead relative link, a README that stays short."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def pages():
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def dead_links(page):
    """Relative links in ``page`` (Markdown ``[text](target)``) whose target does not exist."""
    targets = [t for t in LINK.findall(page.read_text(encoding="utf-8")) if "://" not in t and not t.startswith("mailto:")]
    return [t for t in targets if not (page.parent / t).exists()]


def test_dead_links_are_found(tmp_path):
    page = tmp_path / "p.md"
    (tmp_path / "there.md").write_text("")
    page.write_text("[a](there.md) [b](missing.md#x) [c](https://example.org/x)")
    assert dead_links(page) == ["missing.md"]


def test_no_dead_link_in_the_documentation():
    assert all(p.is_file() for p in pages()[:2]) and len(pages()) > 4
    dead = {str(p.relative_to(ROOT)): dead_links(p) for p in pages()}
    assert {k: v for k, v in dead.items() if v} == {}


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 210
