"""``python -m reports diff`` between real spec runs: per-head effects matched by head index within one
lineage and by role across lineages, directions by meaning.

The evidence files under ``tests/data/lineage/`` are real quick-profile runs of three specs on bundled agents
(``python -m tests.data.lineage.build`` rebuilds them; figures stripped): ``reference-v1`` (the earlier bundled
reference) and its snapshot ``reference-early`` (one training run, seed 0), a lesioned ``reference-v1`` (head 1's
value rows zeroed in the
weights, same training metadata), and the independently trained zoo members ``4h-s1`` / ``4h-s2`` (seeds 1
and 2). ``reference-v1`` (seed 0) and ``4h-s1`` are the cross-lineage pair: their crossing heads are heads 1 and 0.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from interp.vocabulary import head_indices
from reports.__main__ import main
from reports.compare.diff import MATCH_INDEX, MATCH_ROLE, diff_evidence, lineage_of
from reports.schema import load

DATA = Path(__file__).resolve().parent / "data" / "lineage"
ABLATE = "specs/test_behavior.py::test_ablating_a_head_raises_collisions"
HELDOUT = "specs/test_behavior.py::test_collision_rate_on_held_out_seeds_is_below_the_bound"


def run(name: str) -> dict:
    return load(DATA / f"{name}.json")


def as_one_lineage(base: dict, new: dict) -> tuple[dict, dict]:
    """The same two files relabelled as one training run."""
    base, new = copy.deepcopy(base), copy.deepcopy(new)
    new["run"]["checkpoint"]["lineage"] = dict(base["run"]["checkpoint"]["lineage"])
    return base, new


def per_head(diff) -> list:
    return [e for e in diff.effects if head_indices(e.name)]


def old_rule_worse(effect) -> bool:
    """The rule the diff used before directions by meaning: significant and against the effect's ``better``."""
    return effect.significant and effect.better is not None and effect.change != 0 and (
        (effect.change > 0) == (effect.better == "lower"))


# ------------------------------------------------------------------------------------------- the data


def test_the_files_are_what_the_tests_say():
    ref, early, lesioned = run("reference-v1"), run("reference-early"), run("reference-v1-lesioned")
    s1, s2 = run("zoo-4h-s1"), run("zoo-4h-s2")
    lineages = {n: r["run"]["checkpoint"]["lineage"] for n, r in
                {"ref": ref, "early": early, "lesioned": lesioned, "s1": s1, "s2": s2}.items()}
    assert lineages["ref"]["run"] == lineages["early"]["run"] == lineages["lesioned"]["run"]
    assert lineages["early"]["episodes"] < lineages["ref"]["episodes"]
    assert lineages["lesioned"]["edited"] and ref["run"]["checkpoint"]["identity"] != lesioned["run"]["checkpoint"][
        "identity"]
    assert (lineages["s1"]["train_seed"], lineages["s2"]["train_seed"]) == (1, 2)
    assert lineages["s1"]["run"] != lineages["s2"]["run"]
    # the premise of the cross-lineage tests: the independent agents' crossing roles sit on different heads
    assert [r["run"]["head_roles"]["crossing"]["head"] for r in (ref, s1)] == [1, 0]


# ---------------------------------------------------------------------------------------- lineage


def test_lineage_is_read_from_the_evidence_and_stated_first():
    same = lineage_of(run("reference-early")["run"], run("reference-v1")["run"])
    assert same.same is True and same.match_heads == MATCH_INDEX and "seed 0" in same.reason
    other = lineage_of(run("zoo-4h-s1")["run"], run("zoo-4h-s2")["run"])
    assert other.same is False and other.match_heads == MATCH_ROLE and "different lineages" in other.reason
    unknown = copy.deepcopy(run("zoo-4h-s2"))
    del unknown["run"]["checkpoint"]["lineage"]
    told = lineage_of(run("zoo-4h-s1")["run"], unknown["run"])
    assert told.same is None and told.match_heads == MATCH_ROLE and "unknown" in told.reason
    text = diff_evidence(run("zoo-4h-s1"), run("zoo-4h-s2")).format_text().splitlines()
    assert text[2].startswith("lineage: different lineages") and "by role" in text[2]


# ----------------------------------------------------------------------------------- across lineages


@pytest.mark.parametrize("base_name, new_name", [("reference-v1", "zoo-4h-s1"), ("zoo-4h-s1", "zoo-4h-s2")])
def test_independent_agents_give_no_per_head_regression_and_match_heads_by_role(base_name, new_name):
    base, new = run(base_name), run(new_name)
    diff = diff_evidence(base, new)
    assert diff.lineage.match_heads == MATCH_ROLE
    assert not any(e.worse for e in per_head(diff))
    assert not any(": effect " in line and head_indices(line) for line in diff.regressions)
    ablations = [e for e in per_head(diff) if e.nodeid == ABLATE]
    assert ablations and all(e.shared_roles and e.base_name for e in ablations)  # every pair matched by a role
    for effect in ablations:  # each pair's heads are the first holders of a shared role on their own agents
        [b_head], [n_head] = head_indices(effect.base_name), head_indices(effect.name)
        for role in effect.shared_roles:
            assert (_first_head(base, role), _first_head(new, role)) == (b_head, n_head)
    [crossing] = [e for e in ablations if "crossing" in e.shared_roles]
    assert (crossing.base_name, crossing.name) == (f"ablate head {_first_head(base, 'crossing')}: collision rate "
                                                   "change", f"ablate head {_first_head(new, 'crossing')}: "
                                                             "collision rate change")
    # heads holding no role shared with the other agent are listed apart, never compared
    apart = [c for c in diff.not_comparable if c.nodeid == ABLATE]
    compared = {(e.base_name, "base") for e in ablations} | {(e.name, "new") for e in ablations}
    assert apart and not {(c.name, c.side) for c in apart} & compared
    for side in ("base", "new"):  # every head's effect is either compared by role or listed apart
        heads = {head_indices(name)[0] for name, s in compared | {(c.name, c.side) for c in apart} if s == side}
        assert heads == {0, 1, 2, 3}
    assert "Not comparable" in diff.format_text()


def _first_head(evidence: dict, role: str) -> int | None:
    return evidence["run"]["head_roles"][role]["head"]


def test_relabelled_as_one_lineage_the_same_files_are_compared_by_index():
    base, new = as_one_lineage(run("zoo-4h-s1"), run("zoo-4h-s2"))
    diff = diff_evidence(base, new)
    assert diff.lineage.same is True and diff.lineage.match_heads == MATCH_INDEX
    names = {e.name for e in per_head(diff) if e.nodeid == ABLATE}
    assert names == {f"ablate head {h}: collision rate change" for h in range(4)}
    assert diff.not_comparable == ()
    forced = diff_evidence(run("zoo-4h-s1"), run("zoo-4h-s2"), match_heads=MATCH_INDEX)  # the override
    assert {e.name for e in per_head(forced) if e.nodeid == ABLATE} == names
    assert forced.lineage.chosen_by == "override" and "--match-heads" in forced.format_text()


def test_the_old_index_comparison_reports_a_per_head_regression_on_these_files_and_the_default_does_not():
    """The failure itself, on real files: ``4h-s2`` -> ``reference-v1`` paired by head index under the old direction
    rule (a larger ablation effect "worsened") reports head 1 as a regression (-0.15 -> 0.275, p = 0.0035),
    though head 1 of ``4h-s2`` and head 1 of ``reference-v1`` have nothing to do with each other. By role,
    reference-v1's crossing head 1 is paired with 4h-s2's crossing head 0, and the change is reported, not
    counted."""
    s2, ref = run("zoo-4h-s2"), run("reference-v1")
    by_index = diff_evidence(s2, ref, match_heads=MATCH_INDEX)
    old = [e for e in per_head(by_index) if old_rule_worse(e)]
    assert [e.name for e in old] == ["ablate head 1: collision rate change"]  # the control fires
    assert old[0].p_value < 0.01 and (old[0].base_value, old[0].new_value) == (-0.15, 0.275)
    default = diff_evidence(s2, ref)
    assert default.lineage.match_heads == MATCH_ROLE and not any(e.worse for e in per_head(default))
    [crossing] = [e for e in per_head(default) if "crossing" in e.shared_roles and e.nodeid == ABLATE]
    assert (crossing.base_name, crossing.name) == ("ablate head 0: collision rate change",
                                                   "ablate head 1: collision rate change")
    assert crossing.significant and crossing.meaning == "mechanism" and not crossing.worse


# ------------------------------------------------------------------------------------ within a lineage


@pytest.mark.parametrize("base_name, new_name", [("reference-early", "reference-v1"),
                                                 ("reference-v1", "reference-v1-lesioned")])
def test_within_one_lineage_every_regression_of_the_old_rule_is_still_reported(base_name, new_name):
    diff = diff_evidence(run(base_name), run(new_name))
    assert diff.lineage.same is True and diff.lineage.match_heads == MATCH_INDEX and not diff.not_comparable
    for effect in diff.effects:
        if old_rule_worse(effect) and effect.meaning == "outcome":
            assert effect.worse, effect
        if effect.meaning == "mechanism":  # no spec here states a direction for one
            assert effect.worse_direction is None and not effect.worse  # a head mattering more or less: a change
    for change in diff.verdict_changes:
        assert change.worse == (f"{change.nodeid}: verdict {change.base} -> {change.new}" in diff.regressions)


def test_a_lesioned_checkpoint_of_the_same_run_still_reports_its_regressions():
    diff = diff_evidence(run("reference-v1"), run("reference-v1-lesioned"))
    assert diff.regressed, diff.format_text()
    heldout = {e.name: e for e in diff.effects if e.nodeid == HELDOUT}
    collisions = heldout["collision rate"]
    assert collisions.test == "paired-mcnemar" and collisions.worse  # the same held-out seeds: paired
    assert (collisions.base_value, collisions.new_value) == (0.125, 0.375) and collisions.p_value < 0.01
    assert f"{HELDOUT}: verdict inconclusive -> refuted" in diff.regressions
    [lesioned_head] = [e for e in per_head(diff) if e.name == "ablate head 1: collision rate change"]
    assert lesioned_head.significant and not lesioned_head.worse  # ablating a dead head does nothing: a change
    assert main(["diff", str(DATA / "reference-v1.json"), str(DATA / "reference-v1-lesioned.json")]) == 1


def test_the_cli_states_the_lineage_and_takes_the_override(tmp_path, capsys):
    s1, s2 = str(DATA / "zoo-4h-s1.json"), str(DATA / "zoo-4h-s2.json")
    code = main(["diff", s1, s2, "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert "lineage: different lineages" in out and "by role" in out
    written = json.loads((tmp_path / "d.json").read_text())
    assert written["lineage"]["match_heads"] == "role" and written["not_comparable"]
    assert not any("ablate head" in r for r in written["regressions"])
    assert code == (1 if written["regressions"] else 0)
    main(["diff", s1, s2, "--match-heads", "index"])
    assert "set by --match-heads" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["diff", s1, s2, "--match-heads", "position"])
    assert info.value.code == 2
    with pytest.raises(ValueError, match="match_heads must be one of index, role"):
        diff_evidence(run("zoo-4h-s1"), run("zoo-4h-s2"), match_heads="position")


# ------------------------------------------------------------------------------- what the plugin records


def test_bundled_checkpoints_lineage_follows_their_training_runs():
    from interp.simulation.agent import load_agent

    root = Path(__file__).resolve().parents[1] / "checkpoints"
    lineage = {name: load_agent(root / name).describe()["lineage"]
               for name in ("reference-v1", "reference-early", "reference-2h", "zoo-1000/4h-s1", "zoo-1000/2h-s1",
                            "reference", "zoo/4h-s3")}
    assert lineage["reference-v1"]["run"] == lineage["reference-early"]["run"]  # a snapshot of the same run
    assert (lineage["reference-early"]["episodes"], lineage["reference-v1"]["episodes"]) == (1251, 3500)
    # the same seed and env seeds but another head count: another training run
    assert lineage["reference-2h"]["train_seed"] == lineage["reference-v1"]["train_seed"] == 0
    assert lineage["reference-2h"]["run"] != lineage["reference-v1"]["run"]
    # the bundled reference is zoo member 4h-s3: the same run, seed 3, full budget
    assert lineage["reference"] == lineage["zoo/4h-s3"]
    assert (lineage["reference"]["train_seed"], lineage["reference"]["episodes"]) == (3, 3500)
    assert lineage["zoo-1000/4h-s1"]["run"] != lineage["zoo-1000/2h-s1"]["run"]
    assert len({v["run"] for v in lineage.values()}) == 5


def test_an_edited_checkpoint_keeps_its_lineage_and_one_without_metadata_has_none():
    from interp.simulation.agent import load_agent, untrained_agent
    from interp.simulation.lineage import lineage

    agent = load_agent(Path(__file__).resolve().parents[1] / "checkpoints" / "reference")
    edited = agent.with_model(copy.deepcopy(agent.model), "a test edit")
    assert edited.describe()["lineage"]["run"] == agent.describe()["lineage"]["run"]
    assert edited.describe()["lineage"]["edited"] == "a test edit"
    assert untrained_agent(agent.agent_config, agent.env_config).describe()["lineage"]["run"] is None
    other_seed = lineage({**agent.metadata, "seed": 7}, agent.agent_config, agent.env_config)
    assert other_seed["run"] != agent.describe()["lineage"]["run"]


def test_the_real_runs_aggregate_per_stratum_with_the_lesioned_copy_dependent():
    """The example in docs/guide/aggregate.md."""
    from reports.zoo.aggregate import aggregate

    names = ["reference-v1", "reference-early", "reference-v1-lesioned", "zoo-4h-s1", "zoo-4h-s2"]
    agg = aggregate([run(n) for n in names], labels=names)
    assert agg["strata"] == {"4 heads, 1000 episodes": ["zoo-4h-s1", "zoo-4h-s2"],
                             "4 heads, 1251 episodes": ["reference-early"],
                             "4 heads, 3500 episodes": ["reference-v1", "reference-v1-lesioned"]}
    claim = {c["nodeid"]: c for c in agg["claims"]}[ABLATE]
    assert claim["holds"] == "between 1/5 and 5/5"
    full = claim["strata"]["4 heads, 3500 episodes"]
    assert full["dependent"] == {"reference-v1-lesioned": "shares training seed 0 with reference-v1"}
    assert full["independent"]["holds"] == "1/1"


def test_zoo_run_fills_a_missing_lineage_from_the_same_checkpoint_only():
    from interp.zoo_cli import with_lineage

    root = Path(__file__).resolve().parents[1] / "checkpoints"
    old = copy.deepcopy(run("zoo-4h-s1"))
    del old["run"]["checkpoint"]["lineage"]  # evidence written before lineages were recorded
    filled = with_lineage(copy.deepcopy(old), root / "zoo-1000" / "4h-s1")
    assert filled["run"]["checkpoint"]["lineage"] == run("zoo-4h-s1")["run"]["checkpoint"]["lineage"]
    other = with_lineage(copy.deepcopy(old), root / "zoo-1000" / "4h-s2")  # another checkpoint: left unknown
    assert "lineage" not in other["run"]["checkpoint"]


def test_the_html_report_states_the_lineage_and_lists_heads_apart():
    from reports.run.html import build_html

    diff = diff_evidence(run("reference-v1"), run("zoo-4h-s1"))
    page = build_html(run("zoo-4h-s1"), diff=diff.to_dict())
    assert "Lineage: different lineages" in page and "Not comparable" in page
    assert any(e["shared_roles"] == ["crossing", "crossing_left"] for e in diff.to_dict()["effects"])
