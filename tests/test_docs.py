"""The documentation site (``docs/`` + ``mkdocs.yml``): every page reachable, no history words, no dead link, and a
strict build that turns a broken link red.

``.ci/run`` also runs ``mkdocs build --strict`` on the site itself; the build test here runs it on a copy with one
planted defect, so it shows both that the site is otherwise clean and that the strict build catches the defect.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_checks import broken_links, history_words

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
NAV_ENTRY = re.compile(r"^\s*-\s+[^:\n]+:\s+(\S+\.md)\s*$", re.MULTILINE)


def nav_pages(config: str) -> list[str]:
    """The markdown files named in ``mkdocs.yml``'s nav, in order."""
    return NAV_ENTRY.findall(config[config.index("\nnav:"):])


def test_the_nav_names_every_page_once_and_only_pages_that_exist():
    listed = nav_pages((ROOT / "mkdocs.yml").read_text())
    assert len(listed) == len(set(listed)), "a page is listed twice in the nav"
    assert sorted(listed) == sorted(str(p.relative_to(DOCS)) for p in PAGES)


def test_the_site_has_the_four_parts_for_its_readers():
    listed = nav_pages((ROOT / "mkdocs.yml").read_text())
    for part in ("guide/", "how-it-works/", "results/", "validation/", "api/"):
        assert any(p.startswith(part) for p in listed), f"no page under docs/{part}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_names_no_issue_and_no_session(page):
    assert history_words(page.read_text()) == []


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_every_relative_link_on_the_page_resolves_inside_the_site(page):
    assert broken_links(page, DOCS) == []


def test_the_worked_example_on_the_site_is_the_readmes():
    """The README's copy is executed (tests/test_readme_example.py); the site's copy must be the same code."""
    def example(text: str) -> str:
        start = text.index("```python\n# specs/test_my_claims.py")
        return text[start:text.index("```\n", start + 10)]
    assert example((DOCS / "guide" / "writing-specs.md").read_text()) == example((ROOT / "README.md").read_text())


def test_strict_build_fails_on_exactly_the_planted_broken_anchor(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    shutil.copytree(DOCS, tmp_path / "docs")
    config = (ROOT / "mkdocs.yml").read_text()
    assert "paths: [.]" in config
    (tmp_path / "mkdocs.yml").write_text(config.replace("paths: [.]", f"paths: [{ROOT}]"))
    page = tmp_path / "docs" / "guide" / "zoo.md"
    page.write_text(page.read_text() + "\nSee [the table](../results/benchmarks.md#no-such-section).\n")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    warnings = [line for line in proc.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert proc.returncode != 0
    assert len(warnings) == 1 and "no-such-section" in warnings[0], proc.stderr[-3000:]


def test_the_profiles_table_is_the_budgets_in_the_code():
    from specs.support.budget import PROFILES
    text = (DOCS / "guide" / "running-specs.md").read_text()
    rows = re.findall(r"^\| `(quick|default|full)` \| ([\d |]+)\|$", text, re.MULTILINE)
    documented = {name: [int(cell) for cell in cells.split("|")] for name, cells in rows}
    assert documented == {name: [b.heldout_episodes, b.max_pairs, b.batch_pairs, b.calibration_scenes, b.test_scenes,
                                 b.sweep_points, b.fuzz_examples] for name, b in PROFILES.items()}


def test_the_hook_point_table_names_the_reference_models_hook_points_with_their_shapes():
    """Every row of docs/how-it-works/hook-points.md is a hook point of the bundled reference agent, with the shape
    the table gives (B, N, F, H, D, A substituted), and every hook point the model records is in the table."""
    import torch

    from interp.simulation.agent import load_agent

    agent = load_agent(ROOT / "checkpoints" / "reference" / "agent.pt")
    batch, rows = 2, 15
    obs = torch.zeros(batch, rows, 7)
    obs[:, :3, 0] = 1.0  # three present rows
    _, cache = agent.model.run_with_cache(obs)
    text = (DOCS / "how-it-works" / "hook-points.md").read_text()
    features, actions = (int(m) for m in re.search(r"F = (\d+) features.*A = (\d+) actions", text).groups())
    heads = agent.model.attention_layer.heads
    assert (features, actions) == (cache["hook_residual"].shape[-1], len(agent.action_names))
    sizes = {"B": batch, "N": rows, "N-1": rows - 1, "F": features, "H": heads, "D": features // heads, "A": actions,
             "1": 1, "7": 7}
    documented = {}
    for cell, shape in re.findall(r"^\| (`[^|]+`) \| \[([^\]]+)\]", text, re.MULTILINE):
        expected = tuple(sizes[dim.strip()] for dim in shape.split(","))
        first, *more = [name.strip().strip("`") for name in cell.split(",")]
        prefix = first.rsplit(".", 1)[0] + "." if "." in first else ""
        for name in [first] + [prefix + name for name in more]:
            if "{i}" in name:
                layers = [k for k in cache if re.fullmatch(re.escape(name).replace(r"\{i\}", r"\d+"), k)]
                assert layers, f"no layer of {name}"
                documented.update({k: expected for k in layers})
            else:
                documented[name] = expected
    assert {k: tuple(v.shape) for k, v in cache.items()} == documented
