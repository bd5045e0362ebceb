"""The seed map's reserved blocks stay unspent: the fresh held-out block and the confirmation set are named by
no code but the map itself, so no choice can have been fitted on them before their one use.

Spending one is a deliberate act: the code that evaluates the confirmed candidate is added to ``ALLOWED`` in the
same commit, which the history then shows."""
from __future__ import annotations

from pathlib import Path

from interp import seeds

ROOT = Path(__file__).resolve().parents[1]
RESERVED = ("final_heldout", "confirmation")
ALLOWED = {
    Path("interp/seeds.py"), Path("tests/test_seed_map.py"),
    # Deliberately spent: the reference search's stage 3 confirms its choice on the first 1000 confirmation seeds
    # and, only if that is within the bar, evaluates it once on the fresh held-out block (guarded against a
    # second evaluation; tests/test_reference_stage3.py).
    Path("interp/training/reference_search.py"),
    # Its tests read the stage's record (keys named after the ranges) of tiny untrained-like agents on 3 seeds each:
    # no choice among real agents is made there.
    Path("tests/test_reference_stage3.py"),
}


def users(name: str, root: Path = ROOT) -> list[Path]:
    """Project .py files (outside virtual environments) that spell the range's name."""
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0].startswith(".venv") or rel in ALLOWED:
            continue
        if f'"{name}"' in path.read_text(errors="replace") or f"'{name}'" in path.read_text(errors="replace"):
            found.append(rel)
    return found


def test_the_map_stays_disjoint_with_the_reserved_blocks():
    seeds.check_disjoint()
    assert len(seeds.episode_seeds("final_heldout", 1000)) == 1000


def test_no_code_spends_the_reserved_blocks():
    for name in RESERVED:
        assert users(name) == [], f"{name!r} is reserved; spend it deliberately (see this module's docstring)"


def test_the_check_sees_a_planted_user(tmp_path):
    (tmp_path / "pick.py").write_text('from interp.seeds import episode_seeds\nS = episode_seeds("final_heldout", 10)\n')
    assert users("final_heldout", tmp_path) == [Path("pick.py")]
