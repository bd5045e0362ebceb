"""The evidence contract (schema version 2): the one definition of what a spec run records, checked before
anything reads it. Spec-side code (``specs/support/evidence.py``), the report, the diff and the findings all take
the vocabulary from here: evidence ``KINDS``, and (re-exported from ``interp.vocabulary``, their one
definition) ``VERDICTS``, effect fields, effect meanings and ``FIGURE_KINDS``.

One file per run::

    {"schema": 2,
     "run": {"checkpoint": {"identity", "source", "lineage"?, ...}, "profile", "agent_config", "env_config", "seeds",
             "versions", "git_commit", "started", "finished", "head_roles", "role_map", ...},
     "specs": [entry, ...]}

Each spec entry::

    {"nodeid", "claim", "verdict", "outcome", "kind", "checkpoint",
     "effects": [{"name", "value", "ci": [lo, hi], "n", "p_value"?, "paired_seeds"?, "outcomes"?,
                  "better"?, "scale"?, "ci_level"?, "unit"?, "rule"?, "note"?, "verdict"?,
                  "meaning"?, "worse_direction"?}],
     "figures": [{"kind": ..., ...}], "notes",
     "order"?, "duration_s"?, "markers"?, "reason"?, "controls"?, "scenes"?, "data"?, "spec_id"?}

**Verdicts** (a spec's, or one effect's): ``supported`` (the check held and its negative controls were
rejected), ``refuted`` (the check failed), ``inconclusive`` (the budget ran out before a decision), ``vacuous``
(the check also held on a negative control, so it could not fail here), ``not-applicable`` (the spec's
precondition does not hold on this agent, e.g. a head role it needs did not resolve: a skip with the reason),
``unmeasured`` (the profile's budget cannot decide what the spec needs, e.g. a causal head role whose effect is
below what the ``quick`` budget decides: a skip with the reason, not a statement about the agent).
A spec that ended without reaching a verdict (an exception, a setup error, a plain skip) has verdict ``null``
and says why under ``reason``.

Version 1 files (verdicts ``error`` and ``xfail``) are read by :func:`upgrade` (called by :func:`load` and
:func:`merge`): ``error`` whose reason says "vacuous" becomes ``vacuous``, any other ``error`` becomes ``null``,
``xfail`` becomes ``refuted``.

``run.checkpoint.lineage`` (``interp.simulation.lineage``: training run id, training seed, episodes, edit)
tells the diff whether two checkpoints come from one training run, and the aggregate which agents are
independent. Effects may state their ``meaning`` (``outcome`` / ``mechanism``) and, for a mechanistic effect,
its ``worse_direction`` (``interp.vocabulary`` says which effects can worsen).

Spec entries, effects and figures are closed (an unknown key is a typo until the schema says otherwise;
free-form extras go into an entry's ``data``); ``run`` is open, since run metadata grows. Figures are
declarative JSON, never images of plots: ``reports.run.figures`` draws them. Only pictures of scenes (which
the report cannot draw without the simulator) travel as base64 PNG.

Why so strict: evidence files are compared across checkpoints and months (``python -m reports diff``), and
a misspelt field would silently drop out of a comparison. ``validate`` lists every problem with its path.
Over 500 lines because the figure kinds' checks belong with the contract that defines them.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from interp.errors import HypodriveError
from interp.vocabulary import (DECIDED, DIRECTIONS, EFFECT_FIELDS, EFFECT_MEANINGS, EFFECT_OPTIONAL,  # noqa: F401
                               EFFECT_REQUIRED, FIGURE_KINDS, FINDING_VERDICTS, IMAGE_FIGURE_KINDS, UNDECIDED,
                               VERDICT_LABELS, VERDICT_RANK, VERDICTS, effect_meaning, verdict_rank,
                               worse_direction)

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # load() and merge() upgrade version 1 in memory

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
KINDS = ("behavior", "mechanism", "invariance", "fuzz", "other")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_ENTRY_REQUIRED = ("nodeid", "claim", "verdict", "outcome", "kind", "checkpoint", "effects", "figures", "notes")
_ENTRY_OPTIONAL = ("order", "duration_s", "markers", "reason", "controls", "scenes", "data", "near_ties", "spec_id")
_EFFECT_REQUIRED, _EFFECT_OPTIONAL = EFFECT_REQUIRED, EFFECT_OPTIONAL

# kind -> (required keys, optional keys); "kind", "title" and "caption" are allowed on every figure.
_FIGURE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "scene": (("png_base64",), ("seed", "scenario")),
    "filmstrip": (("frames_png_base64", "seed"), ("frame_labels", "condition")),
    "forest": (("rows", "xlabel"), ("reference",)),
    "heatmap": (("matrix", "row_labels", "col_labels"), ("xlabel", "ylabel", "center", "annotate", "colorbar_label")),
    "bars": (("labels", "values"), ("ci", "ylabel", "reference", "reference_label")),
    "line": (("x", "series"), ("bands", "xlabel", "ylabel", "reference")),
    "attention_scene": (("ego", "vehicles", "heads"), ("seed",)),
    "table": (("columns", "rows"), ()),
    # an episode replay (reports.replay.replay_figure): drawn frames, one label each; runs side by side
    "replay": (("frames_png_base64", "seed"), ("frame_labels", "runs", "divergence")),
}
if tuple(_FIGURE_KEYS) != FIGURE_KINDS:  # the keys above are checked against the one list of kinds
    raise ImportError(f"reports.schema figure keys {tuple(_FIGURE_KEYS)} differ from interp.vocabulary.FIGURE_KINDS")
_FIGURE_COMMON = ("kind", "title", "caption")


class EvidenceError(HypodriveError, ValueError):
    """An evidence file or dict does not follow the schema; the message lists every problem with its path."""


# ----------------------------------------------------------------------------------------------- validation


def validate(evidence: Any) -> dict:
    """Check a whole evidence dict against the current schema; return it unchanged or raise EvidenceError.
    (Older readable versions go through :func:`upgrade` first; ``load`` and ``merge`` do that.)"""
    problems: list[str] = []
    if not isinstance(evidence, dict):
        raise EvidenceError(f"evidence must be a JSON object, got {type(evidence).__name__}")
    version = evidence.get("schema")
    if version != SCHEMA_VERSION:  # readers call upgrade() first (load and merge do)
        hint = ("written by a newer hypodrive; upgrade this checkout" if isinstance(version, int)
                and not isinstance(version, bool) and version > SCHEMA_VERSION
                else f'add "schema": {SCHEMA_VERSION} at the top level')
        raise EvidenceError(f"evidence schema version is {version!r}, this reader knows {SCHEMA_VERSION} ({hint})")
    _unknown(problems, "", evidence, ("schema", "run", "specs"))
    _check_run(problems, evidence.get("run"))
    specs = evidence.get("specs")
    if not isinstance(specs, list):
        problems.append(f"specs: expected a list of spec entries, got {_tname(specs)}")
    else:
        seen: dict[str, int] = {}
        for i, entry in enumerate(specs):
            _check_entry(problems, f"specs[{i}]", entry)
            nodeid = entry.get("nodeid") if isinstance(entry, dict) else None
            if isinstance(nodeid, str):
                if nodeid in seen:
                    problems.append(f"specs[{i}].nodeid: {nodeid!r} already used by specs[{seen[nodeid]}]; "
                                    "each spec appears once per run")
                seen.setdefault(nodeid, i)
    _raise_if(problems, "evidence")
    return evidence


def validate_entry(entry: Any) -> dict:
    """Check one spec entry (what the pytest plugin records per test) before it is written."""
    problems: list[str] = []
    _check_entry(problems, "entry", entry)
    _raise_if(problems, "spec entry")
    return entry


def validate_effect(effect: Any) -> dict:
    """Check one effect (the spec-side evidence calls this as each effect is recorded, so a bad one fails the
    spec that made it, naming the field)."""
    problems: list[str] = []
    _check_effect(problems, "effect", effect)
    _raise_if(problems, "effect")
    return effect


def upgrade(evidence: Any) -> Any:
    """An evidence dict of any readable version as the current version (version 1: verdict ``error`` with a
    reason saying "vacuous" -> ``vacuous``, other ``error`` -> null, ``xfail`` -> ``refuted``). Anything else
    is returned unchanged, for ``validate`` to judge."""
    if not isinstance(evidence, dict) or evidence.get("schema") != 1 or not isinstance(evidence.get("specs"), list):
        return evidence
    specs = []
    for entry in evidence["specs"]:
        if isinstance(entry, dict):
            entry = dict(entry)
            verdict = entry.get("verdict")
            if verdict == "error":
                entry["verdict"] = "vacuous" if "vacuous" in str(entry.get("reason") or "") else None
            elif verdict == "xfail":
                entry["verdict"] = "refuted"
        specs.append(entry)
    return {**evidence, "schema": SCHEMA_VERSION, "specs": specs}


def validate_figure(figure: Any) -> dict:
    """Check one figure spec (so a spec can fail early on a malformed figure rather than in the report)."""
    problems: list[str] = []
    _check_figure(problems, "figure", figure)
    _raise_if(problems, "figure")
    return figure


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        shown = problems[:40]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise EvidenceError(f"invalid {what} (schema {SCHEMA_VERSION}), {len(problems)} problem(s):\n  "
                            + "\n  ".join(shown) + more)


def _check_run(problems: list[str], run: Any) -> None:
    if not isinstance(run, dict):
        problems.append(f"run: expected an object with the run's metadata, got {_tname(run)}")
        return
    _check_checkpoint(problems, "run.checkpoint", run.get("checkpoint"), required=True)
    if "baseline_checkpoint" in run and run["baseline_checkpoint"] is not None:
        _check_checkpoint(problems, "run.baseline_checkpoint", run["baseline_checkpoint"], required=True)
    _require_str(problems, "run.profile", run.get("profile"))
    for key in ("agent_config", "env_config"):
        if run.get(key) is not None and not isinstance(run[key], (dict, str)):
            problems.append(f"run.{key}: expected the resolved config (object) or its path, got {_tname(run[key])}")
    for key in ("seeds", "versions"):
        if run.get(key) is not None and not isinstance(run[key], dict):
            problems.append(f"run.{key}: expected an object, got {_tname(run[key])}")
    versions = run.get("versions") if isinstance(run.get("versions"), dict) else {}
    for name, value in versions.items():
        if value is not None and not isinstance(value, str):
            problems.append(f"run.versions.{name}: expected a version string, got {_tname(value)}")
    if run.get("git_commit") is not None and not isinstance(run["git_commit"], str):
        problems.append(f"run.git_commit: expected a string or null, got {_tname(run['git_commit'])}")
    for key in ("started", "finished"):
        if run.get(key) is not None:
            _check_timestamp(problems, f"run.{key}", run[key])
    roles = run.get("head_roles")
    if roles is not None:
        if not isinstance(roles, dict):
            problems.append(f"run.head_roles: expected an object role -> head, got {_tname(roles)}")
        else:
            for role, value in roles.items():
                head = value.get("head") if isinstance(value, dict) else value
                if isinstance(value, dict) and "head" not in value:
                    problems.append(f"run.head_roles.{role}: an object needs a 'head' (int or null)")
                elif head is not None and not _is_int(head):
                    problems.append(f"run.head_roles.{role}: head must be an int or null, got {head!r}")


def _check_checkpoint(problems: list[str], path: str, value: Any, *, required: bool) -> None:
    if not isinstance(value, dict):
        if required:
            problems.append(f"{path}: expected an object with at least 'identity', got {_tname(value)}")
        return
    _require_str(problems, f"{path}.identity", value.get("identity"))
    if value.get("source") is not None and not isinstance(value["source"], str):
        problems.append(f"{path}.source: expected a path or description string, got {_tname(value['source'])}")


def _check_entry(problems: list[str], path: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        problems.append(f"{path}: expected a spec entry object, got {_tname(entry)}")
        return
    for key in _ENTRY_REQUIRED:
        if key not in entry:
            problems.append(f"{path}: missing required key {key!r}")
    _unknown(problems, path, entry, _ENTRY_REQUIRED + _ENTRY_OPTIONAL, hint="put free-form extras under 'data'")
    for key in ("nodeid", "claim", "checkpoint"):
        if key in entry:
            _require_str(problems, f"{path}.{key}", entry[key])
    _check_choice(problems, f"{path}.verdict", entry.get("verdict", ...), VERDICTS, optional=True)
    if entry.get("spec_id") is not None:
        _require_str(problems, f"{path}.spec_id", entry["spec_id"])
    _check_choice(problems, f"{path}.outcome", entry.get("outcome", ...), OUTCOMES)
    _check_choice(problems, f"{path}.kind", entry.get("kind", ...), KINDS)
    if "notes" in entry and not isinstance(entry["notes"], str):
        problems.append(f"{path}.notes: expected a string (join several notes with newlines), got "
                        f"{_tname(entry['notes'])}")
    effects = entry.get("effects", [])
    if not isinstance(effects, list):
        problems.append(f"{path}.effects: expected a list of effects, got {_tname(effects)}")
    else:
        names: set[str] = set()
        for i, effect in enumerate(effects):
            _check_effect(problems, f"{path}.effects[{i}]", effect)
            name = effect.get("name") if isinstance(effect, dict) else None
            if isinstance(name, str):
                if name in names:
                    problems.append(f"{path}.effects[{i}].name: {name!r} used twice in this spec; the diff matches "
                                    "effects by name")
                names.add(name)
    figures = entry.get("figures", [])
    if not isinstance(figures, list):
        problems.append(f"{path}.figures: expected a list of figure specs, got {_tname(figures)}")
    else:
        for i, figure in enumerate(figures):
            _check_figure(problems, f"{path}.figures[{i}]", figure)
    _check_entry_optional(problems, path, entry)


def _check_entry_optional(problems: list[str], path: str, entry: dict) -> None:
    if entry.get("order") is not None and not _is_int(entry["order"]):
        problems.append(f"{path}.order: expected the collection index (int), got {entry['order']!r}")
    if entry.get("duration_s") is not None and not _is_number(entry["duration_s"]):
        problems.append(f"{path}.duration_s: expected seconds (number), got {entry['duration_s']!r}")
    if entry.get("reason") is not None and not isinstance(entry["reason"], str):
        problems.append(f"{path}.reason: expected a string, got {_tname(entry['reason'])}")
    if "markers" in entry and not _is_str_list(entry["markers"]):
        problems.append(f"{path}.markers: expected a list of marker names")
    if "scenes" in entry and not isinstance(entry["scenes"], list):
        problems.append(f"{path}.scenes: expected a list (scene ids or scenario JSON), got {_tname(entry['scenes'])}")
    if "data" in entry and not isinstance(entry["data"], dict):
        problems.append(f"{path}.data: expected an object, got {_tname(entry['data'])}")
    if "near_ties" in entry:  # episodes behind the verdict, and how many had a step decided on a near-tie
        ties = entry["near_ties"]
        if not (isinstance(ties, dict) and set(ties) == {"episodes", "with_near_tie"}
                and all(_is_int(v) and v >= 0 for v in ties.values()) and ties["with_near_tie"] <= ties["episodes"]):
            problems.append(f"{path}.near_ties: expected {{'episodes': n, 'with_near_tie': k}} with 0 <= k <= n, "
                            f"got {_short(ties)}")
    controls = entry.get("controls", [])
    if not isinstance(controls, list):
        problems.append(f"{path}.controls: expected a list of {{'name', 'rejected', 'detail'}}")
        return
    for i, control in enumerate(controls):
        where = f"{path}.controls[{i}]"
        if not isinstance(control, dict):
            problems.append(f"{where}: expected an object {{'name', 'rejected', 'detail'}}, got {_tname(control)}")
            continue
        _unknown(problems, where, control, ("name", "rejected", "detail"))
        _require_str(problems, f"{where}.name", control.get("name"))
        if not isinstance(control.get("rejected"), bool):
            problems.append(f"{where}.rejected: expected true/false (did the check reject the control?)")
        if control.get("detail") is not None and not isinstance(control["detail"], str):
            problems.append(f"{where}.detail: expected a string")


def _check_effect(problems: list[str], path: str, effect: Any) -> None:
    if not isinstance(effect, dict):
        problems.append(f"{path}: expected an effect object {{'name', 'value', 'ci', 'n'}}, got {_tname(effect)}")
        return
    for key in _EFFECT_REQUIRED:
        if key not in effect:
            problems.append(f"{path}: missing required key {key!r}")
    _unknown(problems, path, effect, _EFFECT_REQUIRED + _EFFECT_OPTIONAL)
    if "name" in effect:
        _require_str(problems, f"{path}.name", effect["name"])
    if effect.get("value") is not None and not _is_finite(effect["value"]):  # null: not measurable in this run
        problems.append(f"{path}.value: expected a finite number or null, got {effect['value']!r}")
    if effect.get("ci") is not None:  # null: a count or a deterministic measurement, no interval to state
        _check_ci(problems, f"{path}.ci", effect["ci"])
    if "n" in effect and not (_is_int(effect["n"]) and effect["n"] >= 0):
        problems.append(f"{path}.n: expected a non-negative int (the sample size), got {effect['n']!r}")
    p = effect.get("p_value")
    if p is not None and not (_is_number(p) and 0.0 <= p <= 1.0):
        problems.append(f"{path}.p_value: expected a number in [0, 1] or null, got {p!r}")
    _check_choice(problems, f"{path}.better", effect.get("better", ...), DIRECTIONS, optional=True)
    _check_choice(problems, f"{path}.worse_direction", effect.get("worse_direction", ...), DIRECTIONS, optional=True)
    _check_choice(problems, f"{path}.meaning", effect.get("meaning", ...), EFFECT_MEANINGS, optional=True)
    _check_choice(problems, f"{path}.scale", effect.get("scale", ...), ("proportion", "continuous"), optional=True)
    _check_choice(problems, f"{path}.verdict", effect.get("verdict", ...), VERDICTS, optional=True)
    level = effect.get("ci_level")
    if level is not None and not (_is_number(level) and 0.0 < level < 1.0):
        problems.append(f"{path}.ci_level: expected a confidence level in (0, 1), e.g. 0.95, got {level!r}")
    for key in ("unit", "rule", "note"):
        if effect.get(key) is not None and not isinstance(effect[key], str):
            problems.append(f"{path}.{key}: expected a string, got {_tname(effect[key])}")
    _check_paired(problems, path, effect)


def _check_ci(problems: list[str], path: str, ci: Any) -> None:
    if not (isinstance(ci, list) and len(ci) == 2):
        problems.append(f"{path}: expected [lo, hi], got {ci!r}")
        return
    lo, hi = ci
    for bound, value in (("lo", lo), ("hi", hi)):
        if value is not None and not _is_finite(value):
            problems.append(f"{path}: {bound} must be a finite number or null (unbounded), got {value!r}")
            return
    if lo is not None and hi is not None and lo > hi:
        problems.append(f"{path}: lo {lo} is above hi {hi}; write the interval as [lo, hi]")


def _check_paired(problems: list[str], path: str, effect: dict) -> None:
    seeds = effect.get("paired_seeds")
    outcomes = effect.get("outcomes")
    if seeds is not None:
        if not (isinstance(seeds, list) and all(_is_int(s) for s in seeds)):
            problems.append(f"{path}.paired_seeds: expected a list of int seeds")
            seeds = None
        elif len(set(seeds)) != len(seeds):
            problems.append(f"{path}.paired_seeds: seeds repeat; each paired seed appears once")
    if outcomes is None:
        return
    if seeds is None:
        problems.append(f"{path}.outcomes: per-seed outcomes need 'paired_seeds' (one seed per outcome)")
    if not isinstance(outcomes, dict):
        problems.append(f"{path}.outcomes: expected {{'treatment': [0/1...], 'baseline': [0/1...] (optional)}}")
        return
    _unknown(problems, f"{path}.outcomes", outcomes, ("baseline", "treatment"))
    if "treatment" not in outcomes:
        problems.append(f"{path}.outcomes: missing 'treatment' (a single-arm rate puts its per-seed outcomes there)")
    for arm, values in outcomes.items():
        if arm not in ("baseline", "treatment"):
            continue
        if not (isinstance(values, list) and all(v in (0, 1) and not isinstance(v, float) for v in values)):
            problems.append(f"{path}.outcomes.{arm}: expected a list of 0/1 (or true/false) per seed")
        elif seeds is not None and len(values) != len(seeds):
            problems.append(f"{path}.outcomes.{arm}: {len(values)} outcomes for {len(seeds)} paired_seeds; "
                            "they must line up one to one")


def _check_figure(problems: list[str], path: str, figure: Any) -> None:
    if not isinstance(figure, dict):
        problems.append(f"{path}: expected a figure object with a 'kind', got {_tname(figure)}")
        return
    kind = figure.get("kind")
    if kind not in _FIGURE_KEYS:
        problems.append(f"{path}.kind: {kind!r} is not a figure kind; expected one of {', '.join(FIGURE_KINDS)}")
        return
    required, optional = _FIGURE_KEYS[kind]
    for key in required:
        if key not in figure:
            problems.append(f"{path}: a {kind!r} figure needs {key!r}")
    _unknown(problems, path, figure, _FIGURE_COMMON + required + optional)
    for key in ("title", "caption", "xlabel", "ylabel", "colorbar_label", "reference_label", "condition"):
        if figure.get(key) is not None and not isinstance(figure[key], str):
            problems.append(f"{path}.{key}: expected a string, got {_tname(figure[key])}")
    if figure.get("seed") is not None and not _is_int(figure["seed"]):
        problems.append(f"{path}.seed: expected an int, got {figure['seed']!r}")
    for key in ("reference",):
        if figure.get(key) is not None and not _is_finite(figure[key]):
            problems.append(f"{path}.{key}: expected a finite number, got {figure[key]!r}")
    _FIGURE_CHECKS[kind](problems, path, figure)


def _check_scene(problems: list[str], path: str, fig: dict) -> None:
    if "png_base64" in fig:
        _check_png(problems, f"{path}.png_base64", fig["png_base64"])


def _check_filmstrip(problems: list[str], path: str, fig: dict) -> None:
    frames = fig.get("frames_png_base64")
    if frames is None:
        return
    if not (isinstance(frames, list) and frames):
        problems.append(f"{path}.frames_png_base64: expected a non-empty list of base64 PNG frames")
        return
    for i, frame in enumerate(frames):
        _check_png(problems, f"{path}.frames_png_base64[{i}]", frame)
    labels = fig.get("frame_labels")
    if labels is not None and not (_is_str_list(labels) and len(labels) == len(frames)):
        problems.append(f"{path}.frame_labels: expected one string per frame ({len(frames)})")


def _check_forest(problems: list[str], path: str, fig: dict) -> None:
    rows = fig.get("rows")
    if rows is None:
        return
    if not (isinstance(rows, list) and rows):
        problems.append(f"{path}.rows: expected a non-empty list of {{'label', 'value', 'ci'}}")
        return
    for i, row in enumerate(rows):
        where = f"{path}.rows[{i}]"
        if not isinstance(row, dict):
            problems.append(f"{where}: expected {{'label', 'value', 'ci'}}, got {_tname(row)}")
            continue
        _unknown(problems, where, row, ("label", "value", "ci", "n", "highlight"))
        _require_str(problems, f"{where}.label", row.get("label"))
        if not _is_finite(row.get("value")):
            problems.append(f"{where}.value: expected a finite number, got {row.get('value')!r}")
        _check_ci(problems, f"{where}.ci", row.get("ci"))


def _check_heatmap(problems: list[str], path: str, fig: dict) -> None:
    matrix = fig.get("matrix")
    if matrix is None:
        return
    if not (isinstance(matrix, list) and matrix and all(isinstance(r, list) and r for r in matrix)):
        problems.append(f"{path}.matrix: expected a non-empty list of non-empty rows")
        return
    width = len(matrix[0])
    if any(len(r) != width for r in matrix):
        problems.append(f"{path}.matrix: rows have different lengths {sorted({len(r) for r in matrix})}")
        return
    if not all(v is None or _is_finite(v) for r in matrix for v in r):
        problems.append(f"{path}.matrix: entries must be finite numbers (null for a blank cell)")
    for key, want in (("row_labels", len(matrix)), ("col_labels", width)):
        labels = fig.get(key)
        if labels is not None and not (_is_str_list(labels) and len(labels) == want):
            unit = "row" if key == "row_labels" else "column"
            problems.append(f"{path}.{key}: expected {want} strings (one per {unit}), got {_short(labels)}")
    if fig.get("center") is not None and not _is_finite(fig["center"]):
        problems.append(f"{path}.center: expected the number to centre a diverging colour map on (e.g. 0)")
    if fig.get("annotate") is not None and not isinstance(fig["annotate"], bool):
        problems.append(f"{path}.annotate: expected true/false")


def _check_bars(problems: list[str], path: str, fig: dict) -> None:
    labels, values = fig.get("labels"), fig.get("values")
    if labels is None or values is None:
        return
    if not _is_str_list(labels) or not labels:
        problems.append(f"{path}.labels: expected a non-empty list of strings")
        return
    if not (isinstance(values, list) and len(values) == len(labels) and all(_is_finite(v) for v in values)):
        problems.append(f"{path}.values: expected {len(labels)} finite numbers (one per label)")
    ci = fig.get("ci")
    if ci is not None:
        if not (isinstance(ci, list) and len(ci) == len(labels)):
            problems.append(f"{path}.ci: expected one [lo, hi] (or null) per label")
        else:
            for i, interval in enumerate(ci):
                if interval is not None:
                    _check_ci(problems, f"{path}.ci[{i}]", interval)


def _check_line(problems: list[str], path: str, fig: dict) -> None:
    x, series = fig.get("x"), fig.get("series")
    if x is None or series is None:
        return
    if not (isinstance(x, list) and x and all(_is_finite(v) for v in x)):
        problems.append(f"{path}.x: expected a non-empty list of numbers")
        return
    if not (isinstance(series, dict) and series):
        problems.append(f"{path}.series: expected an object name -> list of y values")
        return
    for name, ys in series.items():
        if not (isinstance(ys, list) and len(ys) == len(x) and all(v is None or _is_finite(v) for v in ys)):
            problems.append(f"{path}.series.{name}: expected {len(x)} numbers (one per x; null for a gap)")
    bands = fig.get("bands")
    if bands is not None:
        if not isinstance(bands, dict):
            problems.append(f"{path}.bands: expected an object name -> list of [lo, hi] per x")
            return
        for name, intervals in bands.items():
            if name not in series:
                problems.append(f"{path}.bands.{name}: no series of that name")
            elif not (isinstance(intervals, list) and len(intervals) == len(x)):
                problems.append(f"{path}.bands.{name}: expected {len(x)} [lo, hi] intervals")
            else:
                for i, interval in enumerate(intervals):
                    _check_ci(problems, f"{path}.bands.{name}[{i}]", interval)


def _check_attention_scene(problems: list[str], path: str, fig: dict) -> None:
    ego, vehicles, heads = fig.get("ego"), fig.get("vehicles"), fig.get("heads")
    if ego is not None:
        _check_vehicle(problems, f"{path}.ego", ego)
    if vehicles is None or heads is None:
        return
    if not isinstance(vehicles, list):
        problems.append(f"{path}.vehicles: expected a list of {{'x', 'y', 'heading', 'label'}}")
        return
    for i, vehicle in enumerate(vehicles):
        _check_vehicle(problems, f"{path}.vehicles[{i}]", vehicle)
    if not (isinstance(heads, dict) and heads):
        problems.append(f"{path}.heads: expected an object head name -> attention weight per vehicle")
        return
    for name, weights in heads.items():
        if not (isinstance(weights, list) and len(weights) == len(vehicles)
                and all(_is_finite(w) and w >= 0 for w in weights)):
            problems.append(f"{path}.heads.{name}: expected {len(vehicles)} non-negative weights (one per vehicle)")


def _check_vehicle(problems: list[str], path: str, vehicle: Any) -> None:
    if not isinstance(vehicle, dict):
        problems.append(f"{path}: expected {{'x', 'y', 'heading', 'label'}}, got {_tname(vehicle)}")
        return
    _unknown(problems, path, vehicle, ("x", "y", "heading", "label", "length", "width"))
    for key in ("x", "y"):
        if not _is_finite(vehicle.get(key)):
            problems.append(f"{path}.{key}: expected a position in metres, got {vehicle.get(key)!r}")
    for key in ("heading", "length", "width"):
        if vehicle.get(key) is not None and not _is_finite(vehicle[key]):
            problems.append(f"{path}.{key}: expected a number, got {vehicle[key]!r}")
    if vehicle.get("label") is not None and not isinstance(vehicle["label"], str):
        problems.append(f"{path}.label: expected a string")


def _check_table(problems: list[str], path: str, fig: dict) -> None:
    columns, rows = fig.get("columns"), fig.get("rows")
    if columns is None or rows is None:
        return
    if not (_is_str_list(columns) and columns):
        problems.append(f"{path}.columns: expected a non-empty list of column names")
        return
    if not isinstance(rows, list):
        problems.append(f"{path}.rows: expected a list of rows")
        return
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == len(columns)
                and all(v is None or isinstance(v, (str, int, float)) for v in row)):
            problems.append(f"{path}.rows[{i}]: expected {len(columns)} cells (strings or numbers)")


_FIGURE_CHECKS = {
    "scene": _check_scene, "filmstrip": _check_filmstrip, "forest": _check_forest, "heatmap": _check_heatmap,
    "bars": _check_bars, "line": _check_line, "attention_scene": _check_attention_scene, "table": _check_table,
    "replay": lambda problems, path, fig: _check_replay(problems, path, fig),
}


def _check_replay(problems: list[str], path: str, fig: dict) -> None:
    _check_filmstrip(problems, path, fig)
    if fig.get("runs") is not None and not _is_str_list(fig["runs"]):
        problems.append(f"{path}.runs: expected the runs' labels (strings)")
    if fig.get("divergence") is not None and not _is_int(fig["divergence"]):
        problems.append(f"{path}.divergence: expected the step (an int) where the runs' actions first differ")


def _check_png(problems: list[str], path: str, value: Any) -> None:
    if not isinstance(value, str):
        problems.append(f"{path}: expected a base64 string of a PNG, got {_tname(value)}")
        return
    try:
        head = base64.b64decode(value[:16], validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"{path}: not valid base64 (encode the PNG bytes with base64.b64encode(...).decode())")
        return
    if not head.startswith(_PNG_MAGIC):
        problems.append(f"{path}: decodes to something that is not a PNG (no PNG signature)")


def _check_choice(problems: list[str], path: str, value: Any, choices: Sequence[str], optional: bool = False) -> None:
    if value is ... or (optional and value is None):
        return
    if value not in choices:
        problems.append(f"{path}: {value!r} is not one of {', '.join(choices)}")


def _check_timestamp(problems: list[str], path: str, value: Any) -> None:
    if not isinstance(value, str):
        problems.append(f"{path}: expected an ISO 8601 timestamp string, got {_tname(value)}")
        return
    try:
        _dt.datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{path}: {value!r} is not an ISO 8601 timestamp (use datetime.isoformat())")


def _require_str(problems: list[str], path: str, value: Any) -> None:
    if not (isinstance(value, str) and value.strip()):
        problems.append(f"{path}: expected a non-empty string, got {_short(value)}")


def _unknown(problems: list[str], path: str, obj: dict, allowed: Iterable[str], hint: str = "") -> None:
    extra = sorted(set(obj) - set(allowed))
    if extra:
        where = path or "top level"
        problems.append(f"{where}: unknown key(s) {', '.join(map(repr, extra))}; allowed: {', '.join(allowed)}"
                        + (f" ({hint})" if hint else ""))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _tname(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------------------------------------- constructors


def new_evidence(run: dict, specs: Sequence[dict] = ()) -> dict:
    """A current-schema evidence dict from run metadata and spec entries (validated)."""
    return validate({"schema": SCHEMA_VERSION, "run": dict(run), "specs": list(specs)})


def png_to_base64(png: bytes) -> str:
    """The string form a 'scene' or 'filmstrip' figure carries its pictures in."""
    if not png.startswith(_PNG_MAGIC):
        raise EvidenceError("png_to_base64: these bytes are not a PNG (no PNG signature)")
    return base64.b64encode(png).decode("ascii")


def now_iso() -> str:
    """The timestamp form used for run.started / run.finished (UTC, seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------------- I/O


def load(path: str | os.PathLike) -> dict:
    """Read and validate an evidence file; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvidenceError(f"{path}: no such evidence file (pytest writes REPORT_DIR/evidence.json when run "
                            "with --report-dir)") from None
    try:
        evidence = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    try:
        return validate(upgrade(evidence))
    except EvidenceError as exc:
        raise EvidenceError(f"{path}: {exc}") from None


def dumps(evidence: dict) -> str:
    """Validate, then the text of ``evidence.json`` (the one serialisation: indented, no NaN)."""
    validate(evidence)
    return json.dumps(evidence, indent=1, allow_nan=False) + "\n"


def save(evidence: dict, path: str | os.PathLike, *, remedy: str | None = None) -> Path:
    """Validate, then write atomically (a reader never sees half a file, even with parallel workers).
    ``remedy``: how the user picks another place, for the error (default: pytest's ``--report-dir``)."""
    from reports.atomic import PYTEST_REMEDY, write_files

    path = Path(path)
    return write_files(path.parent, {path.name: dumps(evidence)}, remedy=remedy or PYTEST_REMEDY)[0]


# ----------------------------------------------------------------------------------------------------- merge


def merge(parts: Sequence[dict]) -> dict:
    """One evidence dict from the partial files of pytest-xdist workers (one file per worker).

    The workers must have tested the same checkpoint; run times span all workers; head roles must agree;
    a spec may appear in only one part. Specs are ordered by collection index ('order') when recorded.
    """
    if not parts:
        raise EvidenceError("merge: no partial evidence to merge (did any worker write its file?)")
    parts = [upgrade(p) for p in parts]
    for i, part in enumerate(parts):
        try:
            validate(part)
        except EvidenceError as exc:
            raise EvidenceError(f"merge: part {i}: {exc}") from None
    run = dict(parts[0]["run"])
    identities = {p["run"]["checkpoint"]["identity"] for p in parts}
    if len(identities) > 1:
        raise EvidenceError(f"merge: the parts tested different checkpoints ({', '.join(sorted(identities))}); "
                            "merge only the files of one run")
    started = [p["run"]["started"] for p in parts if p["run"].get("started")]
    finished = [p["run"]["finished"] for p in parts if p["run"].get("finished")]
    if started:
        run["started"] = min(started, key=_dt.datetime.fromisoformat)
    if finished:
        run["finished"] = max(finished, key=_dt.datetime.fromisoformat)
    roles: dict[str, Any] = {}
    for p in parts:
        for role, value in (p["run"].get("head_roles") or {}).items():
            if role in roles and _head_of(roles[role]) != _head_of(value):
                raise EvidenceError(f"merge: workers resolved role {role!r} to different heads "
                                    f"({_head_of(roles[role])} vs {_head_of(value)}); role resolution must be "
                                    "deterministic (same calibration scenes and seeds on every worker)")
            roles.setdefault(role, value)
    if roles:
        run["head_roles"] = roles
    specs = [entry for p in parts for entry in p["specs"]]
    specs.sort(key=lambda e: (e.get("order") is None, e.get("order") or 0, e["nodeid"]))
    return validate({"schema": SCHEMA_VERSION, "run": run, "specs": specs})


def merge_files(paths: Iterable[str | os.PathLike]) -> dict:
    """Load and merge partial evidence files (e.g. REPORT_DIR/partial/evidence-gw*.json)."""
    paths = sorted(Path(p) for p in paths)
    return merge([load(p) for p in paths])


def _head_of(value: Any) -> Any:
    return value.get("head") if isinstance(value, dict) else value
