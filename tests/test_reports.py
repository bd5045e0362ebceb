"""Tests of reports/: the evidence schema, figures, the HTML report, merging worker files, and the diff CLI.

All evidence here is synthetic (the reports package never sees the model); the planted regression and the
A/A pair are built so the right answer is known.
"""
from __future__ import annotations

import base64
import copy
import functools
import io
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.run import figures
from reports.__main__ import main
from reports.compare.diff import diff_evidence
from reports.run.html import build_html, write_report
from reports.schema import (SCHEMA_VERSION, EvidenceError, load, merge, merge_files, new_evidence, png_to_base64, save, validate,
                            validate_entry, validate_figure)

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = "a3f1c0ffee" * 4
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ synthetic data


@functools.lru_cache(maxsize=None)
def tiny_png(color: str = "#3b82f6", label: str = "") -> str:
    fig = Figure(figsize=(2.0, 1.2), dpi=40)
    ax = fig.subplots()
    ax.set_facecolor(color)
    ax.text(0.5, 0.5, label, ha="center", va="center")
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return png_to_base64(buffer.getvalue())


def run_meta(identity: str = IDENTITY, **extra) -> dict:
    return {"checkpoint": {"identity": identity, "source": "checkpoints/reference"}, "profile": "default",
            "agent_config": {"model": {"type": "EgoAttentionNetwork", "heads": 4}},
            "env_config": {"id": "intersection-v0"}, "seeds": {"evaluation": [100000, 200]},
            "versions": {"highway-env": "1.12.1", "torch": "2.13.0"}, "git_commit": "0d1b916",
            "started": "2025-01-01T10:00:00+00:00", "finished": "2025-01-01T10:08:00+00:00",
            "head_roles": {"crossing_head": {"head": 2, "how": "resolved", "score": 0.81}}, **extra}


def rate_effect(name: str, seeds: list[int], outcomes: list[int], **extra) -> dict:
    """A single-arm rate with its Wilson CI and per-seed outcomes."""
    n, k = len(outcomes), sum(outcomes)
    lo, hi = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {"name": name, "value": k / n, "ci": [float(lo), float(hi)], "n": n, "paired_seeds": list(seeds),
            "outcomes": {"treatment": list(outcomes)}, "better": "lower", "scale": "proportion", **extra}


def entry(nodeid: str, claim: str, verdict: str = "supported", outcome: str = "passed", kind: str = "behavior",
          effects: list | None = None, figures_: list | None = None, notes: str = "", **extra) -> dict:
    return {"nodeid": nodeid, "claim": claim, "verdict": verdict, "outcome": outcome, "kind": kind,
            "checkpoint": IDENTITY, "effects": effects or [], "figures": figures_ or [], "notes": notes, **extra}


def all_figure_kinds() -> list[dict]:
    return [
        {"kind": "scene", "png_base64": tiny_png(), "caption": "crossing scene", "seed": 7},
        {"kind": "forest", "title": "Head ablation", "xlabel": "added collision rate",
         "rows": [{"label": f"head {h}", "value": v, "ci": [v - 0.05, v + 0.06], "n": 200}
                  for h, v in enumerate([0.02, 0.11, -0.01, 0.04])]},
        {"kind": "heatmap", "title": "QK circuit", "matrix": [[0.1, -0.4, 0.9], [0.0, 0.3, -0.2]],
         "row_labels": ["head 0", "head 1"], "col_labels": ["presence", "x", "cos_h"], "colorbar_label": "score"},
        {"kind": "bars", "labels": ["head 0", "head 1"], "values": [0.7, 0.3], "ci": [[0.6, 0.8], None],
         "reference": 0.25, "reference_label": "chance", "ylabel": "share"},
        {"kind": "line", "x": [10, 20, 30], "series": {"head 0": [0.5, 0.3, 0.1], "head 1": [0.2, 0.2, None]},
         "bands": {"head 0": [[0.4, 0.6], [0.2, 0.4], [0.0, 0.2]]}, "xlabel": "distance (m)", "ylabel": "attention"},
        {"kind": "filmstrip", "frames_png_base64": [tiny_png(label=str(i)) for i in range(3)], "seed": 42,
         "caption": "first failing episode"},
        {"kind": "attention_scene", "ego": {"x": 2.0, "y": 40.0, "heading": -1.5708},
         "vehicles": [{"x": -30.0, "y": -2.0, "heading": 0.0, "label": "from left"},
                      {"x": 20.0, "y": 2.0, "heading": 3.1416}],
         "heads": {"head 0": [0.9, 0.1], "head 1 (crossing)": [0.3, 0.7]}},
        {"kind": "table", "columns": ["example", "activation"], "rows": [["vehicle from left", 0.91], ["<b>", None]]},
    ]


def synthetic_run(seed_offset: int, rng_seed: int, crash_p: float = 0.1, yields: str = "supported") -> dict:
    rng = np.random.default_rng(rng_seed)
    seeds = list(range(seed_offset, seed_offset + 200))
    crashes = (rng.random(200) < crash_p).astype(int).tolist()
    specs = [
        entry("specs/test_behavior.py::test_collision_rate_below_bound", "collision rate is below 15 %",
              effects=[rate_effect("collision rate", seeds, crashes)], order=0),
        entry("specs/test_behavior.py::test_yields_to_crossing_vehicle", "the agent yields to a crossing vehicle",
              verdict=yields, outcome="passed" if yields == "supported" else "failed",
              effects=[{"name": "yield share", "value": 0.8, "ci": [0.7, 0.88], "n": 60, "better": "higher"}],
              order=1),
        entry("specs/test_mechanism.py::test_crossing_head_attends_nearest", "the crossing head attends the nearest",
              kind="mechanism", order=2, figures_=all_figure_kinds()[:2],
              controls=[{"name": "randomised weights", "rejected": True, "detail": "share 0.26 vs chance 0.25"}]),
    ]
    return new_evidence(run_meta(), specs)


# ------------------------------------------------------------------------------------------------- schema


def test_valid_evidence_with_every_figure_kind_passes():
    evidence = new_evidence(run_meta(), [entry("specs/t.py::test_a", "a claim", figures_=all_figure_kinds())])
    assert validate(evidence) is evidence


@pytest.mark.parametrize("mutate, expected", [
    (lambda e: e["specs"][0].update(verdict="passed"), "specs[0].verdict: 'passed' is not one of supported"),
    (lambda e: e["specs"][0].pop("claim"), "specs[0]: missing required key 'claim'"),
    (lambda e: e["specs"][0].update(verdit="x"), "unknown key(s) 'verdit'"),
    (lambda e: e["specs"][0]["effects"][0].update(ci=[0.3, 0.1]), "effects[0].ci: lo 0.3 is above hi 0.1"),
    (lambda e: e["specs"][0]["effects"][0].update(n=-1), "effects[0].n: expected a non-negative int"),
    (lambda e: e["specs"][0]["effects"][0].update(value=float("nan")), "effects[0].value: expected a finite"),
    (lambda e: e["specs"][0]["effects"][0]["outcomes"]["treatment"].pop(),
     "outcomes.treatment: 199 outcomes for 200 paired_seeds"),
    (lambda e: e["specs"][0]["effects"][0]["outcomes"]["treatment"].__setitem__(0, 2), "list of 0/1"),
    (lambda e: e["specs"][0]["effects"][0].pop("paired_seeds"), "outcomes need 'paired_seeds'"),
    (lambda e: e["specs"][0]["effects"].append(copy.deepcopy(e["specs"][0]["effects"][0])), "used twice"),
    (lambda e: e["specs"][1].update(nodeid=e["specs"][0]["nodeid"]), "already used by specs[0]"),
    (lambda e: e["specs"][2]["figures"][1]["rows"][0].update(ci=[1]), "rows[0].ci: expected [lo, hi]"),
    (lambda e: e["specs"][2]["figures"].append({"kind": "pie"}), "'pie' is not a figure kind"),
    (lambda e: e["specs"][2]["figures"].append({"kind": "scene",
                                                "png_base64": base64.b64encode(b"GIF89a...").decode()}),
     "not a PNG"),
    (lambda e: e["specs"][2]["figures"].append(
        {"kind": "heatmap", "matrix": [[1, 2]], "row_labels": ["r"], "col_labels": ["x"]}),
     "col_labels: expected 2 strings"),
    (lambda e: e["specs"][2]["controls"][0].pop("rejected"), "controls[0].rejected: expected true/false"),
    (lambda e: e["run"].pop("checkpoint"), "run.checkpoint: expected an object"),
    (lambda e: e["run"].update(started="yesterday"), "run.started: 'yesterday' is not an ISO 8601"),
    (lambda e: e["run"]["head_roles"].update(left_head="two"), "run.head_roles.left_head"),
])
def test_validate_rejects_bad_evidence_with_a_clear_message(mutate, expected):
    evidence = synthetic_run(0, 1)
    mutate(evidence)
    with pytest.raises(EvidenceError) as info:
        validate(evidence)
    assert expected in str(info.value)


def test_validate_lists_every_problem_and_checks_the_version():
    evidence = synthetic_run(0, 1)
    evidence["specs"][0]["verdict"] = "maybe"
    evidence["specs"][1]["kind"] = "vibes"
    with pytest.raises(EvidenceError, match=r"2 problem\(s\)"):
        validate(evidence)
    with pytest.raises(EvidenceError, match="newer hypodrive"):
        validate({**synthetic_run(0, 1), "schema": SCHEMA_VERSION + 1})
    with pytest.raises(EvidenceError, match=f'add "schema": {SCHEMA_VERSION}'):
        validate({"run": {}, "specs": []})
    with pytest.raises(EvidenceError, match="missing required key 'notes'"):
        validate_entry({k: v for k, v in entry("a::b", "c").items() if k != "notes"})
    with pytest.raises(EvidenceError, match="a 'forest' figure needs 'xlabel'"):
        validate_figure({"kind": "forest", "rows": [{"label": "a", "value": 0.0, "ci": [0, 1]}]})


def test_save_load_round_trip_and_load_errors(tmp_path):
    evidence = synthetic_run(0, 1)
    path = save(evidence, tmp_path / "sub" / "evidence.json")
    assert load(path) == evidence
    with pytest.raises(EvidenceError, match="no such evidence file"):
        load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EvidenceError, match=r"bad.json: not valid JSON .* line 1"):
        load(tmp_path / "bad.json")
    broken = copy.deepcopy(evidence)
    broken["specs"][0]["verdict"] = "nope"
    with pytest.raises(EvidenceError):
        save(broken, tmp_path / "never.json")
    assert not (tmp_path / "never.json").exists()


def test_merge_of_worker_files(tmp_path):
    full = synthetic_run(0, 1)
    part_a = new_evidence({**full["run"], "started": "2025-01-01T10:00:05+00:00",
                           "finished": "2025-01-01T10:09:00+00:00"}, [full["specs"][2], full["specs"][0]])
    part_b = new_evidence({**full["run"], "started": "2025-01-01T10:00:01+00:00",
                           "finished": "2025-01-01T10:07:00+00:00"}, [full["specs"][1]])
    save(part_a, tmp_path / "evidence-gw0.json")
    save(part_b, tmp_path / "evidence-gw1.json")
    merged = merge_files(sorted(tmp_path.glob("evidence-gw*.json")))
    assert [e["nodeid"] for e in merged["specs"]] == [e["nodeid"] for e in full["specs"]]  # collection order
    assert merged["run"]["started"] == "2025-01-01T10:00:01+00:00"
    assert merged["run"]["finished"] == "2025-01-01T10:09:00+00:00"
    with pytest.raises(EvidenceError, match="already used"):
        merge([part_a, part_a])
    other = new_evidence(run_meta(identity="b" * 40), [])
    with pytest.raises(EvidenceError, match="different checkpoints"):
        merge([part_a, other])
    roles = new_evidence(run_meta(head_roles={"crossing_head": {"head": 0}}), [])
    with pytest.raises(EvidenceError, match="different heads"):
        merge([part_a, roles])
    with pytest.raises(EvidenceError, match="no partial evidence"):
        merge([])


# ------------------------------------------------------------------------------------------------ figures


@pytest.mark.parametrize("figure", [f for f in all_figure_kinds() if f["kind"] != "table"], ids=lambda f: f["kind"])
def test_every_picture_kind_renders_a_png(figure):
    png = figures.render(figure)
    assert png.startswith(PNG_MAGIC) and len(png) > 500


def test_render_refuses_a_malformed_figure_with_its_problem():
    with pytest.raises(EvidenceError, match="matrix: rows have different lengths"):
        figures.render({"kind": "heatmap", "matrix": [[1, 2], [3]], "row_labels": ["a", "b"], "col_labels": ["x", "y"]})


# --------------------------------------------------------------------------------------------------- HTML


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.spec_rows = 0
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.urls += [attrs[a] for a in ("src", "href") if a in attrs]
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "tr" and "spec-row" in (attrs.get("class") or "").split():
            self.spec_rows += 1
        if tag == "img":
            self.images.append(attrs["src"])


def test_html_report_is_self_contained_with_one_row_per_spec(tmp_path):
    evidence = synthetic_run(0, 1)
    evidence["specs"].append(entry("specs/t.py::test_all_kinds", "every figure kind <shows>", kind="invariance",
                                   verdict="refuted", outcome="failed", figures_=all_figure_kinds(),
                                   notes="line one\nline two", reason="refuted: see evidence"))
    page = write_report(evidence, tmp_path / "report")
    assert load(tmp_path / "report" / "evidence.json") == evidence
    text = page.read_text(encoding="utf-8")
    parser = _PageParser()
    parser.feed(text)
    parser.close()
    assert parser.spec_rows == len(evidence["specs"])
    assert "script" not in parser.tags and "link" not in parser.tags
    for url in parser.urls:  # nothing fetched from outside: data URIs and in-page anchors only
        assert url.startswith("data:") or (url.startswith("#") and url[1:] in parser.ids), url[:60]
    assert len(parser.images) == 2 + 7  # 2 figures of spec 3, 7 picture kinds of the last spec (table is HTML)
    for src in parser.images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert "every figure kind &lt;shows&gt;" in text and "<shows>" not in text  # escaped
    assert IDENTITY in text and "crossing_head" in text and "highway-env" in text and "0d1b916" in text
    assert "verdict-refuted" in text and "verdict-supported" in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless check needs Debian's chromium package")
def test_headless_chromium_parses_the_report(tmp_path):
    evidence = synthetic_run(0, 1)
    page = write_report(evidence, tmp_path)
    done = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=60)
    parser = _PageParser()
    parser.feed(done.stdout)
    assert parser.spec_rows == len(evidence["specs"]), done.stderr[-2000:]
    assert len(parser.images) == 2


def test_a_figure_that_fails_to_draw_does_not_lose_the_report(monkeypatch):
    def boom(figure):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(figures, "render", boom)
    text = build_html(synthetic_run(0, 1))
    assert "could not draw this scene figure: renderer exploded" in text


# --------------------------------------------------------------------------------------------------- diff


def planted_regression() -> tuple[dict, dict]:
    """Base run vs a new run on the SAME seeds where 12 episodes newly crash and none stops crashing, and a
    verdict goes supported -> refuted. The two rates' 95 % CIs overlap, yet the paired test is decisive."""
    base = synthetic_run(0, 1, crash_p=0.1)
    new = copy.deepcopy(base)
    crashes = list(base["specs"][0]["effects"][0]["outcomes"]["treatment"])
    for i in [i for i, c in enumerate(crashes) if c == 0][:12]:
        crashes[i] = 1
    new["specs"][0]["effects"][0] = rate_effect("collision rate", base["specs"][0]["effects"][0]["paired_seeds"],
                                                crashes)
    new["specs"][1].update(verdict="refuted", outcome="failed")
    return base, new


def test_diff_flags_a_planted_regression_with_a_paired_test():
    base, new = planted_regression()
    b, n = base["specs"][0]["effects"][0], new["specs"][0]["effects"][0]
    assert n["ci"][0] < b["ci"][1]  # the CIs overlap: an overlap rule would miss this
    diff = diff_evidence(base, new)
    [collision] = [e for e in diff.effects if e.name == "collision rate"]
    assert collision.test == "paired-mcnemar" and collision.significant and collision.worse
    assert "0->1: 12, 1->0: 0 on 200 shared seeds" in collision.detail
    worse = [c.nodeid for c in diff.verdict_changes if c.worse]
    assert worse == ["specs/test_behavior.py::test_yields_to_crossing_vehicle"]
    assert diff.regressed and len(diff.regressions) == 2
    text = diff.format_text()
    assert "REGRESSION" in text and "exact McNemar" in text and "supported -> refuted" in text


def test_diff_stays_quiet_for_the_same_effect_on_different_seeds():
    base = synthetic_run(0, rng_seed=1, crash_p=0.1)
    new = synthetic_run(5000, rng_seed=2, crash_p=0.1)  # same true rate, disjoint seeds
    diff = diff_evidence(base, new)
    assert not diff.verdict_changes
    [collision] = [e for e in diff.effects if e.name == "collision rate"]
    assert collision.test == "two-proportion-z" and not collision.significant  # no shared seeds: unpaired
    assert not diff.regressed and "RESULT: no regression" in diff.format_text()
    same = diff_evidence(base, copy.deepcopy(base))  # identical run: no discordant pairs at all
    assert all(e.p_value == 1.0 for e in same.effects if e.test.startswith("paired")) and not same.regressed


def test_diff_two_arm_effect_uses_a_paired_sign_test_and_improvements_are_not_regressions():
    seeds = list(range(300))
    rng = np.random.default_rng(3)
    baseline = (rng.random(300) < 0.1).astype(int).tolist()

    def ablation(extra: int, stated: dict) -> dict:
        treatment = [1 if (i < extra or b) else 0 for i, b in enumerate(baseline)]
        value = (sum(treatment) - sum(baseline)) / 300
        return {"name": "added collisions (crossing head ablated)", "value": value, "ci": [value - 0.03, value + 0.03],
                "n": 300, "paired_seeds": seeds, "outcomes": {"baseline": baseline, "treatment": treatment},
                "better": "higher", **stated}

    def runs(stated: dict) -> tuple[dict, dict]:
        return tuple(new_evidence(run_meta(), [entry("specs/t.py::test_ablate", "ablating raises collisions",
                                                     effects=[ablation(extra, stated)])]) for extra in (60, 5))

    base, new = runs({"worse_direction": "lower"})  # the spec states that a smaller effect is worse
    [effect] = diff_evidence(base, new).effects
    assert effect.test == "paired-sign" and effect.significant and effect.worse
    [reverse] = diff_evidence(new, base).effects
    assert reverse.significant and not reverse.worse
    base, new = runs({})  # unstated: a head's ablation effect only changes (a head mattering less is no worse agent)
    [effect] = diff_evidence(base, new).effects
    assert effect.significant and effect.meaning == "mechanism" and not effect.worse
    assert not diff_evidence(base, new).regressed and "no direction is worse" in diff_evidence(base, new).format_text()


def test_diff_without_outcomes_uses_a_wald_test_from_the_cis():
    base = new_evidence(run_meta(), [entry("specs/t.py::test_x", "x", effects=[
        {"name": "share", "value": 0.80, "ci": [0.75, 0.85], "n": 250, "better": "higher"}])])
    near = copy.deepcopy(base)
    near["specs"][0]["effects"][0].update(value=0.78, ci=[0.73, 0.83])
    far = copy.deepcopy(base)
    far["specs"][0]["effects"][0].update(value=0.60, ci=[0.54, 0.66])
    [quiet] = diff_evidence(base, near).effects
    [loud] = diff_evidence(base, far).effects
    assert quiet.test == "wald-z" and not quiet.significant
    assert loud.significant and loud.worse and "standard errors from each run's CI" in loud.test_description


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_exit_codes_and_json(tmp_path, capsys):
    base, new = planted_regression()
    save(base, tmp_path / "base" / "evidence.json")
    save(new, tmp_path / "new" / "evidence.json")
    quiet = synthetic_run(5000, rng_seed=2)
    save(quiet, tmp_path / "quiet" / "evidence.json")

    assert main(["diff", str(tmp_path / "base/evidence.json"), str(tmp_path / "new/evidence.json"),
                 "--json", str(tmp_path / "diff.json")]) == 1
    written = json.loads((tmp_path / "diff.json").read_text())
    assert written["regressed"] and len(written["regressions"]) == 2
    assert main(["diff", str(tmp_path / "base/evidence.json"), str(tmp_path / "quiet/evidence.json")]) == 0
    assert main(["diff", str(tmp_path / "base/evidence.json"), str(tmp_path / "missing.json")]) == 2
    assert "no such evidence file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["diff", "a", "b", "--alpha", "2"])
    assert info.value.code == 2

    assert main(["html", str(tmp_path / "new/evidence.json"), "--out", str(tmp_path / "page"),
                 "--baseline", str(tmp_path / "base/evidence.json")]) == 0
    assert "Compared with baseline" in (tmp_path / "page/index.html").read_text()
    save(new_evidence(run_meta(), base["specs"][:1]), tmp_path / "gw0.json")
    save(new_evidence(run_meta(), base["specs"][1:]), tmp_path / "gw1.json")
    assert main(["merge", str(tmp_path / "gw0.json"), str(tmp_path / "gw1.json"),
                 "--out", str(tmp_path / "merged.json")]) == 0
    assert load(tmp_path / "merged.json")["specs"] == base["specs"]
    (tmp_path / "bad.json").write_text('{"schema": 1, "run": {}, "specs": []}')
    assert main(["validate", str(tmp_path / "merged.json")]) == 0
    assert main(["validate", str(tmp_path / "bad.json")]) == 1


def test_python_m_reports_entry_point(tmp_path):
    base, new = planted_regression()
    save(base, tmp_path / "base.json")
    save(new, tmp_path / "new.json")
    done = subprocess.run([sys.executable, "-m", "reports", "diff", str(tmp_path / "base.json"),
                           str(tmp_path / "new.json"), "--alpha", "0.001"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "RESULT: REGRESSION" in done.stdout and "alpha = 0.001" in done.stdout


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("diff BASE", "html EVIDENCE", "merge PART", "validate EVIDENCE"))


def test_example_ci_workflow_runs_the_suite_twice_and_diffs():
    yaml = pytest.importorskip("yaml")
    path = ROOT / ".github" / "workflows" / "checkpoint-regression.yml"
    workflow = yaml.safe_load(path.read_text())
    commands = "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])
    assert "pip install ." in commands and "pip install -e" not in commands
    assert "python -m pytest specs/" in commands and "--report-dir" in commands
    assert "python -m reports diff" in commands


def test_the_role_map_shades_exactly_the_held_roles_and_supported_effects():
    """Both head tables of the report's role map: one cell per head x column, green only where the head holds
    the category's role or its ablation effect is supported (a planted map, so the shaded cells are known)."""
    from reports.run.roles import HELD, role_map_html

    sel = {"statistic": [0.5, 0.4], "quantile": [0.99, 0.98], "p_value": 0.001}
    eff = {"effect": 0.2, "ci": [0.1, 0.3], "n": 40}
    data = {"null": {"networks": 10, "alpha": 0.01, "categories": {"crossing": {}, "proximity": {}}},
            "heads": [{"head": 0, "roles": ["crossing"], "selectivity": {"crossing": sel, "proximity": sel},
                       "effects": {"collisions": {**eff, "verdict": "supported"},
                                   "arrivals": {**eff, "verdict": "inconclusive"}}},
                      {"head": 1, "roles": [], "selectivity": {"crossing": sel},
                       "effects": {"collisions": {**eff, "verdict": "unmeasured"}}}],
            "roles": {"crossing": [0], "safety": [0]}, "reasons": {"crossing": "planted"}}
    page = role_map_html(data)
    assert page.count("<td") == 2 * 2 + 2 * 2 and page.count(HELD) == 2  # crossing on head 0; its collisions
    assert page.index(HELD) < page.index("+0.500 / +0.400") < page.index("unmeasured")
    assert "(40, supported)" in page and "heads 0" in page and "planted" in page
