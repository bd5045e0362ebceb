"""The README is the front door: short, about the software (not its history), and every link in it leads somewhere.

The checks themselves are tested on planted text, so each can be seen to fail.
"""
from __future__ import annotations

from pathlib import Path

from tests.docs_checks import README_EXTRA_PATTERNS, broken_links, history_words

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 250


def test_readme_is_at_most_250_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_names_no_issue_and_no_session():
    assert history_words(README.read_text(), README_EXTRA_PATTERNS) == []


def test_every_relative_link_in_the_readme_resolves():
    assert broken_links(README, ROOT) == []


def test_the_readme_links_into_each_part_of_the_documentation_site():
    text = README.read_text()
    for part in ("docs/guide/", "docs/how-it-works/", "docs/results/", "docs/validation/"):
        assert f"]({part}" in text, f"no link into {part}"


# Planted text: each check must catch the defect it guards against, and pass clean text.

def test_history_check_catches_issue_numbers_and_session_words():
    planted = ("Measured in issue 18's third round.\nRe-derived in this session (see #16).\n"
               "The previous session's attempts.\n")
    found = " ".join(history_words(planted, README_EXTRA_PATTERNS))
    for phrase in ("issue 18", "third round", "this session", "#16", "session's", "Re-derived in"):
        assert phrase in found, phrase


def test_history_check_passes_plain_prose_and_ignores_code_blocks():
    clean = ("The search runs in rounds of 200 examples; see [a](b.md#x) and &#39;.\n"
             "```bash\ngit log --grep 'issue 18'\n```\n")
    assert history_words(clean, README_EXTRA_PATTERNS) == []


def test_link_check_catches_a_missing_file_a_missing_anchor_and_a_climb_out(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## A section\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/page.md#a-section) [gone](docs/nope.md) [anchor](docs/page.md#nope) "
                    "![img](../outside.png) [web](https://example.org/x)\n```\n[in code](docs/absent.md)\n```\n")
    assert broken_links(page, tmp_path) == ["docs/nope.md (no such file)",
                                            "docs/page.md#nope (no heading with that anchor)",
                                            "../outside.png (outside the project)"]
