"""The safety specs' checks and controls on planted records: the sequential PET test can pass (so its
untrained-weights control can make the spec vacuous), can fail and stops at the block where it decides; the
minimum-TTC outcome is the stated transform and refuses records without measures."""
from __future__ import annotations

import dataclasses

import pytest

from interp.safety.measures import TTC_CAP_S
from interp.simulation.records import EpisodeRecord
from specs.support import graded
from specs.support.budget import PROFILES
from specs.support.evidence import SpecEvidence


def _record(seed: int, pets: list[list], min_ttc: float = TTC_CAP_S, safety: bool = True) -> EpisodeRecord:
    data = {"ego_first_crossing_pets": pets, "min_ttc": min_ttc} if safety else None
    return EpisodeRecord(condition="baseline", seed=seed, crashed=False, arrived=True, length=10, ret=1.0,
                         actions=(1,) * 10, safety=data)


class _PlantedEngine:
    """Planted episodes by seed (no simulator): the PET test's block loop only needs ``run(agent, seeds)``."""

    def __init__(self, pets_by_agent: dict[str, object]) -> None:
        self.pets_by_agent, self.asked = pets_by_agent, []

    def run(self, agent, seeds, progress=False):
        seeds = list(seeds)
        self.asked.append((agent, seeds))
        return [_record(s, self.pets_by_agent[agent](s)) for s in seeds]


def _clean(seed: int) -> list[list]:
    """Every other episode crosses first with PET 2 s; the others have no ego-first crossing."""
    return [[2.0, False]] if seed % 2 == 0 else []


def test_pet_test_can_pass_and_stops_at_the_block_where_it_decides():
    """Planted: every even seed an ego-first crossing with PET 2 s. The share test supports the claim at its 88th
    clean outcome (tests/test_share_test.py), seed 174, in the fourth block of 50; no block after it is run."""
    engine = _PlantedEngine({"agent": _clean})
    check, used = graded.sequential_pet(engine, "agent", range(500))
    assert (check.verdict, check.holds, check.n, check.below, check.undetermined) == ("supported", True, 88, 0, 0)
    assert check.episodes == 175 and used[-1].seed == 174 and check.episodes_run == 200
    assert [seeds[0] for _, seeds in engine.asked] == [0, 50, 100, 150]
    assert check.ci[1] < graded.PET_BOUND and check.p_value <= 0.05


def test_the_untrained_control_can_pass_and_then_the_spec_is_vacuous():
    """The spec's control is the same test on the untrained network over the episodes the agent used. Planted: the
    control keeps the same clean gaps, so it is supported too, and the spec's conclusion is "vacuous"."""
    engine = _PlantedEngine({"agent": _clean, "untrained": _clean})
    check, _ = graded.sequential_pet(engine, "agent", range(500))
    control, _ = graded.sequential_pet(engine, "untrained", range(check.episodes))
    assert control.holds
    evidence = SpecEvidence("specs/test_safety.py::t", "t", "claim", "behavior", "abc", PROFILES["default"])
    evidence.control("untrained weights", control.holds, control.summary)
    with pytest.raises(pytest.fail.Exception, match="vacuous"):
        evidence.conclude(check.holds, check.summary)
    assert evidence.verdict == "vacuous"
    # ... and a control with short gaps is not supported on those episodes, so the conclusion stands
    engine.pets_by_agent["untrained"] = lambda s: [[0.5 if s % 5 == 0 else 2.0, False]]
    control, _ = graded.sequential_pet(engine, "untrained", range(check.episodes))
    assert control.verdict == "refuted" and not control.holds


def test_pet_test_refutes_short_gaps_and_treats_censoring_as_stated():
    """Planted: 1 crossing in 5 at PET 0.5 s: refuted. Censored lower bounds above 1 s count as above; censored at or
    below 1 s are left out and counted; an episode without a crossing gives no outcome."""
    engine = _PlantedEngine({"agent": lambda s: [[0.5 if s % 5 == 0 else 2.0, False]]})
    check, _ = graded.sequential_pet(engine, "agent", range(500))
    assert check.verdict == "refuted" and check.share > graded.PET_BOUND and check.ci[0] > graded.PET_BOUND
    assert [graded.pet_outcome(_record(0, p)) for p in ([[1.5, True]], [[0.4, True]], [], [[1.0, False]],
                                                         [[3.0, False], [0.8, False]])] == [False, None, None,
                                                                                            True, True]
    censored = {"agent": lambda s: [[1.5, True]] if s % 10 else [[0.4, True]]}
    check, _ = graded.sequential_pet(_PlantedEngine(censored), "agent", range(500))
    assert check.verdict == "supported" and check.n == 88 and check.episodes == 98 and check.undetermined == 10


def test_pet_budget_per_profile_and_a_clear_error_for_an_unknown_one():
    assert [graded.pet_max_episodes(PROFILES[name]) for name in ("quick", "default", "full")] == [300, 500, 2000]
    with pytest.raises(ValueError, match="no PET episode budget for profile 'benchmark'"):
        graded.pet_max_episodes(dataclasses.replace(PROFILES["quick"], name="benchmark"))


def test_min_ttc_outcome_is_capped_and_refuses_missing_measures():
    assert graded.min_ttc(_record(1, [], min_ttc=3.2)) == 3.2
    assert graded.min_ttc(_record(1, [], min_ttc=0.0)) == 0.0
    with pytest.raises(ValueError, match="no safety measures"):
        graded.min_ttc(_record(1, [], safety=False))


def test_replay_caption_shows_the_measures_of_each_state():
    from reports.replay import safety_caption

    safety = {"ttc": [5.0, 1.25, 0.0], "drac": [0.0, 3.6, None], "min_distance": [20.0, 4.2, 0.0]}
    assert safety_caption(safety, 0) == " | TTC >=5 s, DRAC 0.0 m/s2, min gap 20.0 m"
    assert safety_caption(safety, 1) == " | TTC 1.25 s, DRAC 3.6 m/s2, min gap 4.2 m"
    assert safety_caption(safety, 2) == " | TTC 0.00 s, DRAC contact, min gap 0.0 m"
    assert safety_caption(None, 0) == "" and safety_caption(safety, 3) == ""
