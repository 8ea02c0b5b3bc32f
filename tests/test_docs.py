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


def documented_keys(page):
    """The keys in the first column of a page's Markdown tables (``| `key` | ...``, several per cell)."""
    keys = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            keys |= set(re.findall(r"`([A-Za-z_@0-9]+)`", line.split("|")[1]))
    return keys


def test_every_documented_setting_exists():
    """A setting named in a table of the README or of a method's page is one the config accepts (a
    removed or misspelt one fails here)."""
    from recbole_llmemb.pipeline.checks import known_keys

    pages = [ROOT / "README.md", *(ROOT / "docs" / f"{m}.md" for m in ("llmemb", "said", "tslrec", "settings"))]
    found = {p.name: documented_keys(p) for p in pages}
    assert len(found["README.md"]) > 10 and len(found["settings.md"]) > 60
    model_names = {"LLMEmbSASRec", "SAIDSASRec", "TSLRecSASRec"}
    unknown = {name: sorted(k for k in keys - known_keys() if not any(m in k for m in model_names) and "SASRec" not in k)
               for name, keys in found.items()}
    assert {k: v for k, v in unknown.items() if v} == {}
