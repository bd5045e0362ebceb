"""The aggregate report over many agents (``reports.zoo.aggregate``) on synthetic evidence dicts: k of all applicable
agents with undecided ones as bounds, exact CIs per stratum (head count x budget) over independent members only,
not-applicable counting, per-head effects regrouped by role, the
aggregate diff (a planted change flagged, a null kept quiet), the HTML page; and one end-to-end
``python -m interp zoo run`` on two bundled agents (``-m slow``)."""
from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from reports.zoo import aggregate as A
from reports.zoo import aggregate_diff as D
from reports.schema import SCHEMA_VERSION, validate

CLAIM_A = "specs/test_mechanism.py::test_a"
CLAIM_B = "specs/test_mechanism.py::test_b"
ABLATE = "specs/test_behavior.py::test_ablating_a_head_raises_collisions"


def _entry(nodeid: str, verdict: str | None, effects=(), reason: str | None = None) -> dict:
    outcome = {"supported": "passed", "refuted": "failed", "vacuous": "failed", "inconclusive": "skipped",
               "not-applicable": "skipped", None: "error"}[verdict]
    entry = {"nodeid": nodeid, "claim": f"claim of {nodeid.split('::')[-1]}", "verdict": verdict,
             "outcome": outcome, "kind": "mechanism", "checkpoint": "x", "effects": list(effects), "figures": [],
             "notes": ""}
    if reason:
        entry["reason"] = reason
    return entry


def _effect(name: str, value: float, verdict: str | None = None) -> dict:
    effect = {"name": name, "value": value, "ci": [value - 0.1, value + 0.1], "n": 100}
    if verdict:
        effect["verdict"] = verdict
    return effect


def _evidence(name: str, heads: int, verdicts: dict[str, str | None], *, roles: dict[str, list[int]] | None = None,
              effects: dict[str, list[dict]] | None = None, seed: int | None = None, episodes: int = 1000) -> dict:
    roles = roles if roles is not None else {"crossing": [1]}
    seed = seed if seed is not None else int.from_bytes(name.encode()[-4:], "big")  # distinct per name
    run = {"checkpoint": {"identity": f"id-{name}", "source": f"/x/checkpoints/zoo/{name}/agent.pt", "heads": heads,
                          "lineage": {"run": f"run-{name}", "train_seed": seed, "episodes": episodes}},
           "profile": "quick",
           "head_roles": {r: {"role": r, "head": hs[0] if hs else None, "heads": hs, "pinned": False,
                              "reason": f"{r} reason", "shares": []} for r, hs in roles.items()}}
    specs = [_entry(nodeid, v, (effects or {}).get(nodeid, ())) for nodeid, v in verdicts.items()]
    return validate({"schema": SCHEMA_VERSION, "run": run, "specs": specs})


def _zoo(n_a_holds: int, n_agents: int = 12, *, planted_b: str = "supported") -> list[dict]:
    out = []
    for i in range(n_agents):
        heads = 4 if i < n_agents - 4 else (2 if i < n_agents - 2 else 8)
        verdict_a = "supported" if i < n_a_holds else "refuted"
        out.append(_evidence(f"{heads}h-s{i}", heads, {CLAIM_A: verdict_a, CLAIM_B: planted_b}))
    return out


# --------------------------------------------------------------------------------------------- counting


def test_k_of_n_with_exact_clopper_pearson_interval_per_stratum():
    agg = A.aggregate(_zoo(7))  # the 8 four-head agents all hold; 2 of 2 two-head; 0 of 2 eight-head... (7 hold)
    claim = {c["nodeid"]: c for c in agg["claims"]}[CLAIM_A]
    assert (claim["k"], claim["n"], claim["refuted"], claim["holds"]) == (7, 12, 5, "7/12")
    assert "ci" not in claim  # no interval over agents of different head counts
    four = claim["strata"]["4 heads, 1000 episodes"]
    assert (four["k"], four["n"], four["independent"]["n"]) == (7, 8, 8)
    ci = four["independent"]["ci"]
    assert ci == pytest.approx(list(A.clopper_pearson(7, 8)))
    # the exact interval's defining property: each bound's one-sided tail is 2.5 %
    assert stats.binom.sf(6, 8, ci[0]) == pytest.approx(0.025, abs=1e-6)
    assert stats.binom.cdf(7, 8, ci[1]) == pytest.approx(0.025, abs=1e-6)
    assert A.clopper_pearson(0, 5)[0] == 0.0 and A.clopper_pearson(5, 5)[1] == 1.0
    assert A.clopper_pearson(0, 0) is None
    json.dumps(agg, allow_nan=False)  # JSON-able, no NaN


def test_not_applicable_and_undecided_are_counted_apart_from_n():
    verdicts = ["supported", "supported", "refuted", "vacuous", "not-applicable", "not-applicable",
                "inconclusive", None]
    evidences = [_evidence(f"4h-s{i}", 4, {CLAIM_A: v}) for i, v in enumerate(verdicts)]
    evidences.append(_evidence("4h-s9", 4, {CLAIM_B: "supported"}))  # CLAIM_A not run on this agent
    claim = {c["nodeid"]: c for c in A.aggregate(evidences)["claims"]}[CLAIM_A]
    assert (claim["k"], claim["n"], claim["decided"]) == (2, 6, 4)  # vacuous counts against the claim
    assert claim["not_applicable"] == 2
    assert (claim["inconclusive"], claim["no_verdict"], claim["not_run"]) == (1, 1, 1)
    assert claim["applicable"] == 6 and claim["undecided"] == 2
    assert claim["holds"] == "between 2/6 and 4/6" and claim["bounds"] == pytest.approx([2 / 6, 4 / 6])
    assert claim["verdicts"]["4h-s7"] is None and "4h-s9" not in claim["verdicts"]


def test_breakdown_by_head_count():
    agg = A.aggregate(_zoo(10))  # agents 0-7: 4 heads, 8-9: 2 heads, 10-11: 8 heads; first 10 hold
    assert agg["head_counts"] == {"2": 2, "4": 8, "8": 2}
    by = {c["nodeid"]: c for c in agg["claims"]}[CLAIM_A]["strata"]
    assert {h: (v["k"], v["n"]) for h, v in by.items()} == {
        "2 heads, 1000 episodes": (2, 2), "4 heads, 1000 episodes": (8, 8), "8 heads, 1000 episodes": (0, 2)}
    assert by["8 heads, 1000 episodes"]["independent"]["ci"] == pytest.approx(list(A.clopper_pearson(0, 2)))


def test_undecided_agents_are_bounds_never_left_out_of_n():
    """The issue's example: 2 supported and 12 undecided read between 2/14 and 14/14, not 2/2."""
    verdicts = ["supported"] * 2 + ["inconclusive"] * 11 + [None]
    agg = A.aggregate([_evidence(f"4h-s{i}", 4, {CLAIM_A: v}) for i, v in enumerate(verdicts)])
    claim = agg["claims"][0]
    assert claim["holds"] == "between 2/14 and 14/14" and (claim["k"], claim["n"], claim["undecided"]) == (2, 14, 12)
    ind = claim["strata"]["4 heads, 1000 episodes"]["independent"]
    assert ind["ci"] == pytest.approx([A.clopper_pearson(2, 14)[0], A.clopper_pearson(14, 14)[1]])
    assert "between 2/14 and 14/14" in A.format_table(agg)
    # control: with every agent decided the bounds close to one share and the interval to the plain exact one
    decided = A.aggregate([_evidence(f"4h-s{i}", 4, {CLAIM_A: "supported" if i < 2 else "refuted"})
                           for i in range(14)])["claims"][0]
    assert decided["holds"] == "2/14" and decided["bounds"] == [2 / 14, 2 / 14]
    assert decided["strata"]["4 heads, 1000 episodes"]["independent"]["ci"] == pytest.approx(
        list(A.clopper_pearson(2, 14)))


def test_strata_by_head_count_and_budget_are_never_pooled():
    long = [_evidence(f"4h-long{i}", 4, {CLAIM_A: "supported"}, episodes=3500) for i in range(4)]
    short = [_evidence(f"4h-short{i}", 4, {CLAIM_A: "refuted"}, episodes=1000) for i in range(4)]
    agg = A.aggregate(long + short)
    claim = agg["claims"][0]
    assert list(agg["strata"]) == ["4 heads, 1000 episodes", "4 heads, 3500 episodes"]
    assert {k: (v["k"], v["n"]) for k, v in claim["strata"].items()} == {
        "4 heads, 1000 episodes": (0, 4), "4 heads, 3500 episodes": (4, 4)}
    assert "ci" not in claim  # one interval over both budgets would describe neither recipe
    unknown = _evidence("4h-old", 4, {CLAIM_A: "supported"})
    del unknown["run"]["checkpoint"]["lineage"]  # evidence written before lineages were recorded
    assert list(A.aggregate([unknown])["strata"]) == ["4 heads, ? episodes"]


def test_only_members_that_share_no_seed_count_as_independent():
    # 2h/4h/8h triples share a training seed across strata (fine: never pooled); inside one stratum, three
    # 4-head members share seed 1 and one member records no seed
    same_seed = [_evidence(f"4h-dup{i}", 4, {CLAIM_A: "supported"}, seed=1) for i in range(3)]
    other = [_evidence("4h-s2", 4, {CLAIM_A: "refuted"}, seed=2)]
    seedless = _evidence("4h-noseed", 4, {CLAIM_A: "supported"})
    seedless["run"]["checkpoint"]["lineage"] = {"run": None, "train_seed": None, "episodes": 1000}
    stratum = A.aggregate(same_seed + other + [seedless])["claims"][0]["strata"]
    [(key, s)] = stratum.items()
    assert key == "4 heads, 1000 episodes" and (s["k"], s["n"]) == (4, 5)  # all counted as agents
    assert s["independent"]["agents"] == ["4h-dup0", "4h-s2"] and s["independent"]["holds"] == "1/2"
    assert s["dependent"] == {"4h-dup1": "shares training seed 1 with 4h-dup0",
                              "4h-dup2": "shares training seed 1 with 4h-dup0",
                              "4h-noseed": "training seed not recorded"}
    # control: the same agents with distinct seeds all count
    distinct = [_evidence(f"4h-dup{i}", 4, {CLAIM_A: "supported"}, seed=10 + i) for i in range(3)] + other
    s = A.aggregate(distinct)["claims"][0]["strata"]["4 heads, 1000 episodes"]
    assert s["independent"]["n"] == 4 and s["dependent"] == {}


def test_roles_resolution_share_and_every_agents_roles():
    evidences = [_evidence("4h-s1", 4, {CLAIM_A: "supported"}, roles={"crossing": [1], "ego": [2, 0]}),
                 _evidence("4h-s2", 4, {CLAIM_A: "supported"}, roles={"crossing": [], "ego": [3]}),
                 _evidence("2h-s1", 2, {CLAIM_A: "supported"}, roles={"crossing": [0], "ego": []})]
    agg = A.aggregate(evidences)
    assert (agg["roles"]["crossing"]["k"], agg["roles"]["crossing"]["n"]) == (2, 3)
    assert agg["roles"]["crossing"]["strata"]["4 heads, 1000 episodes"]["k"] == 1
    assert agg["roles"]["crossing"]["ci"] is None  # no interval over strata
    assert {a["label"]: a["roles"]["ego"] for a in agg["agents"]} == {"4h-s1": [2, 0], "4h-s2": [3], "2h-s1": []}


def test_unmeasured_causal_roles_are_not_counted_as_unresolved():
    ev = _evidence("4h-s1", 4, {CLAIM_A: "supported"}, roles={"crossing": [1], "safety": []})
    ev["run"]["head_roles"]["safety"]["reason"] = "not measured: causal roles need rollouts"
    role = A.aggregate([ev])["roles"]["safety"]
    assert (role["k"], role["n"], role["not_measured"]) == (0, 0, 1)


def test_per_head_effects_are_aggregated_by_role_not_by_index():
    # the crossing head is head 1 on one agent and head 3 on the other; head 0 holds no role on either
    def ablation(collision_changes):
        return {ABLATE: [_effect(f"ablate head {h}: collision rate change", v, "supported" if v > 0.1 else "refuted")
                         for h, v in enumerate(collision_changes)]}

    evidences = [_evidence("4h-s1", 4, {ABLATE: "supported"}, roles={"crossing": [1]},
                           effects=ablation([0.0, 0.3, 0.02, 0.01])),
                 _evidence("4h-s2", 4, {ABLATE: "supported"}, roles={"crossing": [3]},
                           effects=ablation([0.01, 0.0, 0.03, 0.2]))]
    rows = {(r["effect"], r["role"]): r for r in A.aggregate(evidences)["role_effects"]}
    crossing = rows[("ablate head {h}: collision rate change", "crossing")]
    assert sorted((v["agent"], v["head"]) for v in crossing["values"]) == [("4h-s1", 1), ("4h-s2", 3)]
    assert crossing["summary"]["mean"] == pytest.approx(0.25)
    assert (crossing["supported"], crossing["with_verdict"]) == (2, 2)
    unassigned = rows[("ablate head {h}: collision rate change", A.NO_ROLE)]
    assert unassigned["agents"] == 2 and len(unassigned["values"]) == 6
    assert unassigned["summary"]["max"] == pytest.approx(0.03) and unassigned["supported"] == 0


def test_an_effect_naming_several_heads_is_kept_per_agent():
    name = "crossing head 1 vs head 0: collision rate change"
    ev = _evidence("4h-s1", 4, {CLAIM_A: "supported"}, effects={CLAIM_A: [_effect(name, 0.4)]})
    rows = A.aggregate([ev])["role_effects"]
    assert [(r["effect"], r["role"]) for r in rows] == [("crossing head {h} vs head {h}: collision rate change",
                                                         A.SPEC_CHOSEN)]


def test_role_map_ablation_effects_are_grouped_by_role():
    ev = _evidence("4h-s1", 2, {CLAIM_A: "supported"}, roles={"safety": [1]})
    ev["run"]["role_map"] = {"roles": {"safety": [1]}, "reasons": {}, "causal": {"measured": True},
                             "heads": [{"head": h, "profile": {}, "roles": ["safety"] if h else [],
                                        "effects": {"collisions": {"effect": e, "ci": [e - .1, e + .1], "n": 200,
                                                                   "p_value": 0.01, "verdict": v}}}
                                       for h, (e, v) in enumerate([(0.01, "refuted"), (0.2, "supported")])]}
    agg = A.aggregate([ev])
    rows = {r["role"]: r for r in agg["role_effects"] if r["nodeid"] == "role map"}
    assert rows["safety"]["values"][0]["value"] == 0.2 and rows[A.NO_ROLE]["values"][0]["head"] == 0
    assert agg["roles"]["safety"]["score"]["mean"] == pytest.approx(0.2)


def test_labels_default_to_the_checkpoint_folder_and_stay_unique():
    evidences = [_evidence("4h-s1", 4, {CLAIM_A: "supported"}), _evidence("4h-s1", 4, {CLAIM_A: "supported"})]
    evidences[1]["run"]["checkpoint"]["identity"] = "other"
    assert [a["label"] for a in A.aggregate(evidences)["agents"]] == ["4h-s1", "4h-s1#2"]
    snap = _evidence("x", 4, {CLAIM_A: "supported"})
    snap["run"]["checkpoint"]["source"] = "/runs/zoo/4h-s1/snapshots/episode-250.pt"
    assert A.agent_label(snap) == "episode-250"


def test_one_agent_under_two_names_counts_once():
    """``reference`` is zoo member 4h-s3: the same identity under two names is one training run, one agent."""
    member = _evidence("4h-s3", 4, {CLAIM_A: "supported"})
    same = _evidence("reference", 4, {CLAIM_A: "supported"})
    same["run"]["checkpoint"]["identity"] = member["run"]["checkpoint"]["identity"]
    other = _evidence("4h-s4", 4, {CLAIM_A: "refuted"})
    agg = A.aggregate([member, same, other])
    assert [(a["label"], a["aliases"]) for a in agg["agents"]] == [("4h-s3", ["reference"]), ("4h-s4", [])]
    (claim,) = agg["claims"]
    assert len(claim["verdicts"]) == 2
    from reports.zoo.aggregate_html import build_aggregate_html

    assert "4h-s3 <small>(= reference)</small>" in build_aggregate_html(agg)  # the page says which names were merged
    # control: a distinct identity under the same kind of name is a second agent
    same["run"]["checkpoint"]["identity"] = "id-reference"
    assert len(A.aggregate([member, same, other])["agents"]) == 3


def test_aggregate_refuses_no_evidence_and_invalid_evidence():
    with pytest.raises(ValueError, match="no evidence"):
        A.aggregate([])
    bad = _evidence("4h-s1", 4, {CLAIM_A: "supported"})
    bad["specs"][0]["verdict"] = "passed"
    with pytest.raises(ValueError, match="verdict"):
        A.aggregate([bad])


# ------------------------------------------------------------------------------------------------- diff


def _four_heads(prefix: str, k: int, n: int = 12) -> list[dict]:
    return [_evidence(f"4h-{prefix}{i}", 4, {CLAIM_A: "supported" if i < k else "refuted", CLAIM_B: "supported"})
            for i in range(n)]


def test_aggregate_diff_on_the_same_agents_lists_paired_changes_without_an_unpaired_test():
    base, new = A.aggregate(_zoo(11)), A.aggregate(_zoo(1))  # CLAIM_A: 11/12 -> 1/12 on the same agents
    diff = D.diff_aggregates(base, new)
    assert diff["overlap"] == "same agents" and diff["significant"] == []
    assert all(c["strata"] == [] for c in diff["claims"])  # no Barnard: the samples are paired
    row = {c["nodeid"]: c for c in diff["claims"]}[CLAIM_A]
    assert row["paired"] == {"agents": 12, "worse": 10, "better": 0, "sideways": 0}
    assert len(diff["verdict_changes"]) == 10 and all(v["worse"] for v in diff["verdict_changes"])
    assert diff["regressed"] and len(diff["regressions"]) == 10  # each agent's drop, as in the run diff
    text = D.format_diff(diff)
    assert "paired and descriptive" in text and "11/12 -> 1/12; down 10, up 0" in text
    same = D.diff_aggregates(base, base)
    assert not same["regressed"] and "RESULT: no regression" in D.format_diff(same)


def test_aggregate_diff_on_disjoint_agents_tests_each_stratum():
    base, new = A.aggregate(_four_heads("a", 11)), A.aggregate(_four_heads("b", 1))
    diff = D.diff_aggregates(base, new)
    assert diff["overlap"] == "disjoint agents" and diff["verdict_changes"] == []
    [flagged] = diff["significant"]
    assert flagged["nodeid"] == CLAIM_A and flagged["stratum"] == "4 heads, 1000 episodes"
    assert flagged["worse"] and flagged["p_value"] == pytest.approx(stats.barnard_exact([[11, 1], [1, 11]]).pvalue)
    assert diff["regressed"] and len(diff["regressions"]) == 1 and "11/12 -> 1/12" in D.format_diff(diff)


def test_aggregate_diff_on_disjoint_agents_tests_role_resolution_per_stratum():
    def agents(prefix: str, resolved: int) -> list[dict]:
        return [_evidence(f"4h-{prefix}{i}", 4, {CLAIM_A: "supported"}, roles={"crossing": [1] if i < resolved else []})
                for i in range(12)]

    diff = D.diff_aggregates(A.aggregate(agents("a", 12)), A.aggregate(agents("b", 1)))
    [role] = diff["roles"]
    assert (role["role"], role["base"], role["new"], role["worse"]) == ("crossing", "12/12", "1/12", True)
    assert any(r.startswith("role 'crossing'") for r in diff["regressions"])
    quiet = D.diff_aggregates(A.aggregate(agents("a", 7)), A.aggregate(agents("b", 6)))
    assert not quiet["roles"][0]["significant"] and not quiet["regressed"]


def test_aggregate_diff_stays_quiet_on_a_null():
    diff = D.diff_aggregates(A.aggregate(_four_heads("a", 6)), A.aggregate(_four_heads("b", 7)))
    assert diff["significant"] == [] and not diff["regressed"]
    b = {c["nodeid"]: c for c in diff["claims"]}[CLAIM_B]
    assert round(b["strata"][0]["p_value"], 3) == 1.0
    assert "RESULT: no regression" in D.format_diff(diff)


def test_aggregate_diff_improvement_is_not_a_regression():
    diff = D.diff_aggregates(A.aggregate(_four_heads("a", 0)), A.aggregate(_four_heads("b", 12)))
    assert [c["nodeid"] for c in diff["significant"]] == [CLAIM_A] and not diff["regressed"]
    same = D.diff_aggregates(A.aggregate(_zoo(0)), A.aggregate(_zoo(12)))
    assert not same["regressed"] and all(v["better"] for v in same["verdict_changes"])


def test_reports_diff_detects_aggregate_files(tmp_path, capsys):
    from reports.__main__ import main

    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(A.aggregate(_zoo(12))))
    new.write_text(json.dumps(A.aggregate(_zoo(2))))
    assert main(["diff", str(base), str(new), "--json", str(tmp_path / "d.json")]) == 1
    assert "12/12 -> 2/12; down 10" in capsys.readouterr().out
    assert json.loads((tmp_path / "d.json").read_text())["regressed"] is True
    assert main(["diff", str(base), str(base)]) == 0
    ev = tmp_path / "evidence.json"
    ev.write_text(json.dumps(_evidence("4h-s1", 4, {CLAIM_A: "supported"})))
    assert main(["diff", str(ev), str(new)]) == 2  # an evidence file against an aggregate: refused


# ------------------------------------------------------------------------------------------------- HTML


def test_the_page_is_self_contained_with_alt_text(tmp_path):
    from reports.zoo.aggregate_html import write_aggregate_report

    agg = A.aggregate(_zoo(7))
    page = write_aggregate_report(agg, tmp_path / "agg")
    html = page.read_text()
    assert json.loads((tmp_path / "agg" / "aggregate.json").read_text())["claims"][0]["k"] == 7
    assert "http://" not in html and "https://" not in html
    assert html.count("<img ") == html.count('alt="') >= 1
    assert "7/12" in html and "4h-s0" in html and "not applicable" in html
    assert "different commits" not in html
    evidences = _zoo(7)
    evidences[0]["run"]["git_commit"], evidences[1]["run"]["git_commit"] = "a" * 40, "b" * 40
    agg = A.aggregate(evidences)
    assert agg["git_commits"] == ["a" * 40, "b" * 40]
    assert "used 2 different commits" in write_aggregate_report(agg, tmp_path / "two").read_text()


def test_format_table_is_markdown():
    table = A.format_table(A.aggregate(_zoo(7)))
    lines = table.splitlines()
    assert lines[0].startswith("| claim | holds (k of applicable) | refuted | vacuous") and len(lines) == 4
    assert "| `test_a` | 7/12 |" in table and "4 heads, 1000 episodes" in lines[0]
    evidences = _zoo(7) + [_evidence("4h-s99", 4, {"specs/test_fuzz.py::test_campaign": None})]
    assert A.format_table(A.aggregate(evidences)).endswith("Decided on no agent (not in the table): test_campaign")


# ------------------------------------------------------------------------------------------ over training


def test_over_training_verdicts_flips_roles_and_key_effect_by_role_not_index(tmp_path):
    from reports.zoo.over_training import over_training, write_over_training_report

    nodeid = "specs/test_mechanism.py::test_crossing_head_attends_most_to_the_nearest_crossing_vehicle"
    points = [(250, "not-applicable", [], None), (500, "refuted", [2], 0.4), (750, "supported", [0], 0.8)]
    evidences = []
    for episode, verdict, heads, share_ in points:
        effects = {nodeid: [_effect(f"share of scenes, head {heads[0]}", share_)]} if heads else {}
        ev = _evidence(f"episode-{episode}", 4, {nodeid: verdict}, roles={"crossing": heads, "safety": []},
                       effects=effects)
        ev["run"]["head_roles"]["safety"]["reason"] = "not measured: quick profile"
        evidences.append(ev)
    data = over_training(evidences[::-1], [750, 500, 250])  # any order in, training order out
    assert data["episodes"] == [250, 500, 750]
    claim = data["claims"][0]
    assert claim["verdicts"] == ["not-applicable", "refuted", "supported"] and claim["flips"] == [500, 750]
    assert claim["effect"] == "share of scenes, head {h}" and claim["values"] == [None, 0.4, 0.8]
    assert data["roles"] == {"crossing": [[], [2], [0]]}  # safety never measured: left out
    assert data["role_first_resolved"] == {"crossing": 500}
    page = write_over_training_report(data, tmp_path / "ot")
    assert (tmp_path / "ot" / "over_training.png").read_bytes().startswith(b"\x89PNG")
    html = page.read_text()
    assert html.count("<img ") == 1 and 'alt="Verdicts and key effects of 1 claims' in html
    json.loads((tmp_path / "ot" / "over_training.json").read_text())


# ------------------------------------------------------------------------------------------ zoo CLI glue


def test_snapshots_in_training_order_with_the_final_agent(tmp_path):
    from interp.zoo_cli import snapshots

    (tmp_path / "snapshots").mkdir()
    for n in (1000, 250, 500, 750):
        (tmp_path / "snapshots" / f"episode-{n}.pt").write_bytes(b"")
    (tmp_path / "snapshots" / "notes.txt").write_text("")
    assert [e for e, _ in snapshots(tmp_path)] == [250, 500, 750, 1000]
    (tmp_path / "agent.pt").write_bytes(b"")
    (tmp_path / "history.json").write_text(json.dumps([{}] * 1000))
    assert [e for e, _ in snapshots(tmp_path)] == [250, 500, 750, 1000]  # the final agent is the last snapshot
    (tmp_path / "history.json").write_text(json.dumps([{}] * 1100))
    assert snapshots(tmp_path)[-1] == (1100, tmp_path / "agent.pt")


def test_an_agent_is_skipped_only_for_the_same_identity_profile_and_selection(tmp_path):
    from interp.zoo_cli import up_to_date

    sel = {"profile": "quick", "markers": "not behavior", "keyword": None, "pytest_args": []}
    (tmp_path / "evidence.json").write_text(json.dumps(_evidence("4h-s1", 4, {CLAIM_A: "supported"})))
    assert not up_to_date(tmp_path, "id-4h-s1", sel)  # no record of a finished zoo run
    (tmp_path / "zoo_run.json").write_text(json.dumps({"identity": "id-4h-s1", "selection": sel}))
    assert up_to_date(tmp_path, "id-4h-s1", sel)
    assert not up_to_date(tmp_path, "id-other", sel)  # the checkpoint changed
    assert not up_to_date(tmp_path, "id-4h-s1", {**sel, "profile": "default"})
    assert not up_to_date(tmp_path, "id-4h-s1", {**sel, "markers": None})


def test_zoo_run_resolves_agents_by_name_or_path():
    from interp.errors import HypodriveError
    from interp.zoo_cli import CHECKPOINTS, agent_name, resolve_agent

    assert resolve_agent("reference") == (CHECKPOINTS / "reference").resolve()
    assert agent_name(CHECKPOINTS / "reference") == "reference"
    assert agent_name(CHECKPOINTS / "reference" / "agent.pt") == "reference"
    with pytest.raises(HypodriveError, match="no agent"):
        resolve_agent("no-such-agent")


# ------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_zoo_run_on_two_bundled_agents_end_to_end(tmp_path, request):
    """``python -m interp zoo run`` with the rollout-free specs on two bundled agents: one pytest subprocess per
    agent, an aggregate over both, and a rerun that skips both (resumable). 58 s on the 2 cores alone, 134 s
    beside a training run: opt-in with ``-m slow``."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("two pytest runs of the rollout-free specs (1-2.5 min): run with -m slow")
    import subprocess
    import sys

    from tests.planted import ROOT

    out = tmp_path / "zoo"
    cmd = [sys.executable, "-m", "interp", "zoo", "run", "--profile", "quick", "-m", "not behavior", "--no-zoo",
           "--agents", "reference", "reference-2h", "--out", str(out), "--no-progress"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    agg = json.loads((out / "aggregate.json").read_text())
    assert sorted(a["label"] for a in agg["agents"]) == ["reference", "reference-2h"]
    assert agg["head_counts"] == {"2": 1, "4": 1} and agg["profiles"] == ["quick"]
    assert all(sum(1 for _ in c["verdicts"]) == 2 for c in agg["claims"])
    assert not any("behavior" in c["kind"] for c in agg["claims"])
    assert (out / "index.html").is_file()
    for name in ("reference", "reference-2h"):
        assert json.loads((out / "agents" / name / "evidence.json").read_text())["run"]["profile"] == "quick"
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("skipped (evidence for this identity") == 2, again.stdout
