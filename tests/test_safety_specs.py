"""The safety specs' checks and controls on planted records: the PET check can pass (so its untrained-weights
control can make the spec vacuous) and can fail; the minimum-TTC outcome is the stated transform and refuses
records without measures."""
from __future__ import annotations

import pytest

from interp.safety.measures import TTC_CAP_S
from interp.simulation.records import EpisodeRecord
from specs.support import graded


def _record(seed: int, pets: list[list], min_ttc: float = TTC_CAP_S, safety: bool = True) -> EpisodeRecord:
    data = {"ego_first_crossing_pets": pets, "min_ttc": min_ttc} if safety else None
    return EpisodeRecord(condition="baseline", seed=seed, crashed=False, arrived=True, length=10, ret=1.0,
                         actions=(1,) * 10, safety=data)


def test_pet_check_can_pass_so_the_control_can_make_the_spec_vacuous():
    """Planted: 100 ego-first crossings, all with PET 2 s, plus episodes without one: supported."""
    records = [_record(i, [[2.0, False]]) for i in range(100)] + [_record(1000 + i, []) for i in range(20)]
    check = graded.pet_check(records)
    assert check.verdict == "supported" and check.n == 100 and check.below == 0


def test_pet_check_fails_when_gaps_are_short_and_treats_censoring_as_stated():
    """Planted: 20 of 100 crossings at 0.5 s: refuted. Censored bounds above 1 s count as above; censored at or
    below 1 s are left out and counted."""
    records = [_record(i, [[0.5 if i < 20 else 2.0, False]]) for i in range(100)]
    assert graded.pet_check(records).verdict == "refuted"
    censored = [_record(i, [[1.5, True]]) for i in range(100)] + [_record(200 + i, [[0.4, True]]) for i in range(7)]
    check = graded.pet_check(censored)
    assert check.n == 100 and check.undetermined == 7 and check.verdict == "supported"


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
