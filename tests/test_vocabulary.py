"""One vocabulary: no collection of verdict words outside ``interp/vocabulary.py``, one ranking, and the
rules that say which effects can worsen.

The scanner walks the project's code (``interp/``, ``reports/``, ``specs/``, ``fixtures/``, ``benchmarks/``
and the root ``conftest.py``; ``tests/`` is left out because its files spell verdicts as test data and
expected answers) and reports every tuple, list, set or dict literal (a ``Literal[...]`` included) that holds
two or more verdict words as string constants. It must find its planted offenders, and nothing in the
project. Figure kinds are spelt only in the vocabulary and in the three dispatch tables keyed by kind, whose
keys are checked against it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from interp import vocabulary as V

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("interp", "reports", "specs", "fixtures", "benchmarks", "conftest.py")
HOME = ROOT / "interp" / "vocabulary.py"


def verdict_collections(path: Path) -> list[str]:
    """``path:line`` of each tuple/list/set/dict literal with two or more verdict words in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    words = set(V.VERDICTS)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None] + node.values
        else:
            continue
        hits = [i.value for i in items if isinstance(i, ast.Constant) and i.value in words]
        if len(hits) >= 2:
            found.append(f"{path}:{node.lineno} {sorted(set(hits))}")
    return found


def project_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return [f for f in files if f.resolve() != HOME.resolve()]


def test_no_collection_of_verdict_words_outside_the_vocabulary():
    files = project_files()
    assert len(files) > 50  # the walk really covers the project
    offenders = [hit for f in files for hit in verdict_collections(f)]
    assert offenders == [], "spell verdict collections with interp.vocabulary's constants:\n" + "\n".join(offenders)


@pytest.mark.parametrize("source", [
    'RANK = {"supported": 2, "refuted": 1}',
    'COLOURS = {"vacuous": "#fff", None: "#000", "not-applicable": "#eee"}',
    'if v in ("refuted", "inconclusive"):\n    pass',
    'OK = ["supported", "x", "inconclusive"]',
    'S = {"supported", "refuted"}',
    'from typing import Literal\nName = Literal["supported", "refuted"]',
    'out = {"k": 1, "v": ("vacuous", "refuted")}',
])
def test_the_scanner_finds_a_planted_offender(tmp_path, source):
    planted = tmp_path / "offender.py"
    planted.write_text(source + "\n")
    assert len(verdict_collections(planted)) == 1


def test_the_scanner_passes_code_that_uses_the_constants(tmp_path):
    clean = tmp_path / "clean.py"
    clean.write_text("from interp.vocabulary import REFUTED, SUPPORTED\n"
                     "RANK = {SUPPORTED: 2, REFUTED: 1}\n"
                     "one = ('supported', 'x')\n"  # one verdict word is a word, not a vocabulary
                     "verdict = 'refuted' if True else 'supported'\n")
    assert verdict_collections(clean) == []


def test_the_vocabulary_itself_would_be_flagged_so_the_exemption_is_what_lets_it_pass():
    assert verdict_collections(HOME)  # the scanner sees its literal collections


def test_one_ranking_used_by_both_diffs():
    from reports.compare import diff
    from reports.zoo import aggregate_diff

    assert V.VERDICT_RANK is diff.VERDICT_RANK
    order = sorted(V.VERDICTS, key=V.verdict_rank, reverse=True)
    assert order[0] == V.SUPPORTED and order[1] == V.INCONCLUSIVE and V.verdict_rank(None) == 0
    assert aggregate_diff.verdict_rank is V.verdict_rank and V.verdict_rank("typo") == 0


def test_every_verdict_has_a_label_a_colour_and_a_short_form():
    from reports.run.html import VERDICT_STYLE

    for verdict in (*V.VERDICTS, None):
        assert verdict in V.VERDICT_LABELS and verdict in V.VERDICT_COLOURS and verdict in V.VERDICT_SHORT
        assert verdict in V.VERDICT_MARKS and verdict in V.VERDICT_RANK and verdict in VERDICT_STYLE
    assert V.DECIDED | V.UNDECIDED | {V.NOT_APPLICABLE} == {*V.VERDICTS, None}
    assert not V.DECIDED & V.UNDECIDED


DISPATCH_TABLES = {("reports/schema.py", "_FIGURE_KEYS"), ("reports/schema.py", "_FIGURE_CHECKS"),
                   ("reports/run/figures.py", "_RENDERERS")}  # keyed by kind; their keys are tested below


def figure_kind_collections(path: Path) -> list[tuple[str, str | None]]:
    """(file, assigned name) of each literal collection holding three or more figure kinds in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names[id(node.value)] = target.id
    found = []
    for node in ast.walk(tree):
        items = (node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else
                 [k for k in node.keys if k is not None] if isinstance(node, ast.Dict) else [])
        if sum(isinstance(i, ast.Constant) and i.value in V.FIGURE_KINDS for i in items) >= 3:
            found.append((path.resolve().relative_to(ROOT).as_posix() if path.resolve().is_relative_to(ROOT)
                          else path.name, names.get(id(node))))
    return found


def test_figure_kinds_are_spelt_only_in_the_vocabulary_and_the_dispatch_tables_checked_against_it(tmp_path):
    found = {hit for f in project_files() for hit in figure_kind_collections(f)}
    assert found == DISPATCH_TABLES
    planted = tmp_path / "copy.py"
    planted.write_text('KINDS = ("scene", "filmstrip", "forest")\n')
    assert figure_kind_collections(planted) == [("copy.py", "KINDS")]


def test_schema_and_figures_reexport_the_vocabulary():
    from reports import schema
    from reports.run import figures

    assert schema.VERDICTS is V.VERDICTS and schema.FIGURE_KINDS is V.FIGURE_KINDS
    assert schema.EFFECT_FIELDS is V.EFFECT_FIELDS and figures.IMAGE_KINDS is V.IMAGE_FIGURE_KINDS
    assert set(V.IMAGE_FIGURE_KINDS) <= set(V.FIGURE_KINDS)
    assert set(figures._RENDERERS) == set(V.IMAGE_FIGURE_KINDS)
    assert tuple(schema._FIGURE_KEYS) == V.FIGURE_KINDS and set(schema._FIGURE_CHECKS) == set(V.FIGURE_KINDS)


# ------------------------------------------------------------------------------------- direction by meaning


@pytest.mark.parametrize("effect, spec_kind, meaning, worse", [
    ({"name": "collision rate", "better": "lower"}, "behavior", V.OUTCOME, V.HIGHER),
    ({"name": "arrival rate", "better": "higher"}, "behavior", V.OUTCOME, V.LOWER),
    ({"name": "share of empty scenes where the agent keeps its speed"}, "behavior", V.OUTCOME, None),
    ({"name": "ablate head 2: collision rate change", "better": "lower"}, "behavior", V.MECHANISM, None),
    ({"name": "share of scenes, head 1", "better": "higher"}, "mechanism", V.MECHANISM, None),
    ({"name": "attention share on the crossing car", "better": "higher"}, "mechanism", V.MECHANISM, None),
    ({"name": "added collisions (crossing head ablated)", "better": "higher"}, "behavior", V.MECHANISM, None),
    ({"name": "collision rate with the ablation", "better": "lower"}, "behavior", V.MECHANISM, None),
    ({"name": "overhead share", "better": "lower"}, "behavior", V.OUTCOME, V.HIGHER),
    ({"name": "ablate head 2: collision rate change", "worse_direction": "lower"}, "behavior", V.MECHANISM,
     V.LOWER),
    ({"name": "rate", "meaning": "mechanism", "better": "lower"}, "behavior", V.MECHANISM, None),
    ({"name": "head 3 share", "meaning": "outcome", "better": "higher"}, "mechanism", V.OUTCOME, V.LOWER),
])
def test_what_can_worsen_follows_the_effects_meaning(effect, spec_kind, meaning, worse):
    assert V.effect_meaning(effect, spec_kind) == meaning
    assert V.worse_direction(effect, spec_kind) == worse


def test_head_names_are_found_and_renamed_by_role():
    name = "crossing head 1 vs head 3: collision rate change"
    assert V.head_indices(name) == (1, 3)
    assert V.rename_heads(name, {1: "crossing", 3: "far"}) == (
        "crossing head <crossing> vs head <far>: collision rate change")
    assert V.head_indices("overhead 2 m") == ()
