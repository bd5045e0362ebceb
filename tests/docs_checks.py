"""Checks on the project's prose (README and the documentation site): history words and relative links.

Hand-written (a few regular expressions): the link checker of ``mkdocs build --strict`` covers the pages under
``docs/`` only, not the README that GitHub shows, and no linter flags a docstring's or a page's history words.
"""
from __future__ import annotations

import re
from pathlib import Path

# Words that speak of the work's history rather than of the software.
HISTORY_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE),  # "issue 18", "issues 15 and 16"
    re.compile(r"(?<![\w&/])#\d+\b"),  # "#18" (not an HTML entity or a URL fragment)
    re.compile(r"\b(this|that|the previous|the first|an earlier|the last|the next) session\b", re.IGNORECASE),
    re.compile(r"\bsession's\b", re.IGNORECASE),
    re.compile(r"\b(first|second|third|fourth|previous|last)[- ]round\b", re.IGNORECASE),
    re.compile(r"\bre-derived in\b", re.IGNORECASE),
)
# The README speaks to users, so it names no session at all (pytest's own sessions included).
README_EXTRA_PATTERNS: tuple[re.Pattern[str], ...] = (re.compile(r"\bsessions?\b", re.IGNORECASE),)

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def history_words(text: str, extra: tuple[re.Pattern[str], ...] = ()) -> list[str]:
    """Every history phrase in ``text`` (outside code blocks), as ``line N: phrase``."""
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    found = []
    for pattern in HISTORY_PATTERNS + extra:
        for match in pattern.finditer(prose):
            found.append(f"line {prose.count(chr(10), 0, match.start()) + 1}: {match.group(0)!r}")
    return found


def slug(heading: str) -> str:
    """The anchor Python-Markdown's ``toc`` extension (and GitHub, for these headings) gives a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def anchors(markdown: str) -> set[str]:
    """The anchors of a markdown file's headings (outside code blocks)."""
    prose = FENCE.sub("", markdown)
    return {slug(h) for h in HEADING.findall(prose)}


def broken_links(page: Path, root: Path) -> list[str]:
    """Relative links of ``page`` whose file (or, for a markdown file, heading anchor) does not exist.

    Absolute URLs are not fetched (the checks run offline); a link may not climb above ``root``.
    """
    text = FENCE.sub("", page.read_text())
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # http:, https:, mailto:
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        if root.resolve() not in (resolved, *resolved.parents):
            broken.append(f"{target} (outside the project)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target} (no heading with that anchor)")
    return broken
