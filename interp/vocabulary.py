"""The one vocabulary of verdicts, figure kinds and effects, shared by the specs (``specs/``), the statistics
layer (``interp/``) and the reports (``reports/``; ``reports.schema`` re-exports it).

Why one module: the diff ranks verdicts, the aggregate counts decided ones, the pages colour them and the
findings accept two of them. When each kept its own copy of the words, two rankings drifted apart and a
misspelt word would silently drop out of a comparison. Every collection of verdict words lives here;
``tests/test_vocabulary.py`` scans the project's code for any other.

Effects carry a *meaning* that decides what the diff may call worse:

- ``outcome``: the agent's own behaviour (its collision rate, its arrival rate, the share of scenes where it
  keeps its speed). It can worsen, in the direction opposite to its ``better``.
- ``mechanism``: how the network computes (a head's ablation effect, an attention share, a head's
  contribution). A larger ablation effect means a head matters more, not that the agent drives worse, so a
  mechanistic effect only *changes*, unless its spec states which direction is worse (``worse_direction``).

An effect's meaning is its ``meaning`` field where the spec sets it; otherwise an effect whose name speaks of
a head or an ablation ("ablate head 2: ...", "share of scenes, head 1", "added collisions (crossing head
ablated)") or that belongs to a ``mechanism`` spec is mechanistic, and any other is an outcome.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

# ------------------------------------------------------------------------------------------------ verdicts

SUPPORTED: Final = "supported"  # the check held and its negative controls were rejected
REFUTED: Final = "refuted"  # the check failed
INCONCLUSIVE: Final = "inconclusive"  # the budget ran out before a decision
VACUOUS: Final = "vacuous"  # the check also held on a negative control: it could not fail here
NOT_APPLICABLE: Final = "not-applicable"  # the spec's precondition does not hold on this agent
UNMEASURED: Final = "unmeasured"  # the precondition (a causal head role) was beyond the profile's budget to decide

VERDICTS: Final = (SUPPORTED, REFUTED, INCONCLUSIVE, VACUOUS, NOT_APPLICABLE, UNMEASURED)
"""Every verdict a spec or an effect may carry (``None``: the spec ended without one)."""

STATISTICAL_VERDICTS: Final = (SUPPORTED, REFUTED, INCONCLUSIVE)
"""What a statistical decision rule (``interp.statistics``) returns."""

DECIDED: Final = frozenset({SUPPORTED, REFUTED, VACUOUS})
"""Verdicts that settle whether a claim holds on an agent (vacuous: it cannot hold there)."""

UNDECIDED: Final = frozenset({INCONCLUSIVE, UNMEASURED, None})
"""Not settled: the budget ran out (on the claim, or on the head role it needs), or the spec ended without a
verdict. Unmeasured counts here, not with not-applicable: the budget, not the agent, left it open."""

UNSETTLED_BY_CHECK: Final = frozenset({REFUTED, INCONCLUSIVE})
"""A spec whose recorded statistical verdict is one of these keeps it when its check fails."""

FINDING_VERDICTS: Final = (REFUTED, VACUOUS)
"""The verdicts a reviewed finding may record (``checkpoints/<name>/findings.json``)."""


def finding_key(spec_id: str, param_id: str | None = None) -> str:
    """A finding's key in ``findings.json``: the spec id, or ``spec id[parameter id]`` for a finding about one
    parametrization (its verdict says nothing of the others). The one place the format is built."""
    return f"{spec_id}[{param_id}]" if param_id else spec_id


def finding_spec_id(key: str) -> str:
    """The spec id a finding key belongs to (its parametrization, if any, dropped)."""
    return key.split("[", 1)[0]


VERDICT_RANK: Final[Mapping[str | None, int]] = {SUPPORTED: 3, INCONCLUSIVE: 2, REFUTED: 1, VACUOUS: 1,
                                                 NOT_APPLICABLE: 1, UNMEASURED: 1, None: 0}
"""The one ranking: supported > inconclusive > refuted = vacuous = not-applicable = unmeasured > no verdict. A verdict
that moves down it between two runs is a regression (``reports.compare.diff``, ``reports.zoo.aggregate_diff``)."""

VERDICT_LABELS: Final[Mapping[str | None, str]] = {SUPPORTED: "supported", REFUTED: "refuted",
                                                   INCONCLUSIVE: "inconclusive", VACUOUS: "vacuous",
                                                   NOT_APPLICABLE: "not applicable", UNMEASURED: "unmeasured",
                                                   None: "no verdict"}
"""How a verdict reads on a page."""

VERDICT_SHORT: Final[Mapping[str | None, str]] = {SUPPORTED: "S", REFUTED: "R", INCONCLUSIVE: "I", VACUOUS: "V",
                                                  NOT_APPLICABLE: "NA", UNMEASURED: "U", None: "?"}
"""One- or two-letter forms for dense grids."""

VERDICT_COLOURS: Final[Mapping[str | None, tuple[str, str]]] = {
    SUPPORTED: ("#14532d", "#bbf7d0"), REFUTED: ("#7f1d1d", "#fecaca"), INCONCLUSIVE: ("#713f12", "#fde68a"),
    VACUOUS: ("#ffffff", "#7e22ce"), NOT_APPLICABLE: ("#374151", "#e5e7eb"), UNMEASURED: ("#1e3a8a", "#dbeafe"),
    None: ("#ffffff", "#6b7280")}
"""(text colour, background) of a verdict badge."""

VERDICT_MARKS: Final[Mapping[str | None, str]] = {SUPPORTED: "#16a34a", REFUTED: "#dc2626",
                                                  INCONCLUSIVE: "#f59e0b", VACUOUS: "#7e22ce",
                                                  NOT_APPLICABLE: "#d1d5db", UNMEASURED: "#93c5fd", None: "#6b7280"}
"""The colour of a verdict's mark in a plot (saturated, readable as a dot on white)."""


def verdict_rank(verdict: str | None) -> int:
    """Position in :data:`VERDICT_RANK` (an unknown word ranks as no verdict)."""
    return VERDICT_RANK.get(verdict, 0)


def is_decided(verdict: str | None) -> bool:
    return verdict in DECIDED


def is_undecided(verdict: str | None) -> bool:
    return verdict in UNDECIDED


# ------------------------------------------------------------------------------------------- figure kinds

FIGURE_KINDS: Final = ("scene", "filmstrip", "forest", "heatmap", "bars", "line", "attention_scene", "table",
                       "replay")
"""Every declarative figure kind of the evidence (their keys: ``reports.schema``)."""

IMAGE_FIGURE_KINDS: Final = ("scene", "filmstrip", "forest", "heatmap", "bars", "line", "attention_scene")
"""The kinds ``reports.run.figures`` draws as one PNG (``table`` is written as HTML, ``replay`` as a player)."""

# ------------------------------------------------------------------------------------------------ effects

EFFECT_REQUIRED: Final = ("name", "value", "ci", "n")
EFFECT_OPTIONAL: Final = ("p_value", "paired_seeds", "outcomes", "better", "scale", "ci_level", "unit", "rule",
                          "note", "verdict", "meaning", "worse_direction")
EFFECT_FIELDS: Final = EFFECT_REQUIRED + EFFECT_OPTIONAL

HIGHER: Final = "higher"
LOWER: Final = "lower"
DIRECTIONS: Final = (HIGHER, LOWER)
"""Values of an effect's ``better`` (where the claim wants it) and ``worse_direction``."""

OUTCOME: Final = "outcome"
MECHANISM: Final = "mechanism"
EFFECT_MEANINGS: Final = (OUTCOME, MECHANISM)

CAN_WORSEN: Final[Mapping[str, bool]] = {OUTCOME: True, MECHANISM: False}
"""Per effect meaning: may a change in its ``better``'s opposite direction be called worse without the
spec saying so? Outcomes yes; mechanistic effects only change."""

_NAMES_A_HEAD = re.compile(r"\bhead \d+\b")
_ABOUT_THE_NETWORK = re.compile(r"\bheads?\b|\bablat", re.IGNORECASE)  # a head, or an ablation of a part


def effect_meaning(effect: Mapping[str, Any], spec_kind: str | None = None) -> str:
    """``outcome`` or ``mechanism`` (see the module docstring for the rule)."""
    stated = effect.get("meaning")
    if stated in EFFECT_MEANINGS:
        return stated
    if spec_kind == MECHANISM or _ABOUT_THE_NETWORK.search(str(effect.get("name", ""))):
        return MECHANISM
    return OUTCOME


def worse_direction(effect: Mapping[str, Any], spec_kind: str | None = None) -> str | None:
    """The direction in which a change of this effect is worse, or None when it only changes: the spec's
    ``worse_direction`` if stated; else, for an effect whose meaning can worsen, the opposite of ``better``."""
    stated = effect.get("worse_direction")
    if stated in DIRECTIONS:
        return stated
    if not CAN_WORSEN[effect_meaning(effect, spec_kind)]:
        return None
    better = effect.get("better")
    return {HIGHER: LOWER, LOWER: HIGHER}.get(better) if better is not None else None


def head_indices(name: str) -> tuple[int, ...]:
    """The head indices an effect's name refers to ("crossing head 1 vs head 3: ..." -> (1, 3))."""
    return tuple(int(m.group(0).split()[-1]) for m in _NAMES_A_HEAD.finditer(name))


def rename_heads(name: str, mapping: Mapping[int, str]) -> str:
    """The effect name with each head index replaced by ``mapping[index]`` (a role), so effects about the same
    role in two runs get one name."""
    return _NAMES_A_HEAD.sub(lambda m: f"head <{mapping[int(m.group(0).split()[-1])]}>", name)
