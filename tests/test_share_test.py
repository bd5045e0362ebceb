"""The always-valid sequential test of a share (``interp.statistics.share``) on planted 0/1 sequences, no simulator:
known answers (all clean, a 20 % share), error rates at most alpha with a look after every outcome at a share exactly
at the bound, two mutants that this calibration check catches, the power behind the PET spec's budgets, and clear
errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from interp.statistics import share
from interp.statistics.inputs import CONTINUE, REFUTED, SUPPORTED, StatsInputError
from interp.statistics.intervals import wilson_interval

ALPHA, BOUND = 0.05, 0.05
RUNS, LENGTH = 4000, 500  # null sequences, each looked at after every one of its outcomes


def test_all_clean_is_supported_after_the_number_of_outcomes_computed_by_hand():
    """After n clean outcomes each bet g of the grid (g = (i + 1/2) / 20) has grown the stake by (1 + g b/(1-b))^n:
    E_below = mean_g (1 + g / 19)^n for b = 0.05, which first reaches 1/alpha = 20 at n = 88 (computed here with
    plain floats, not the module). No test can do better than the single largest bet 1/(1-b): 0.95^n <= 0.05
    needs n >= 59, the same as the exact one-sided binomial test at a fixed n."""
    by_hand = next(n for n in range(1, 1000)
                   if sum((1 + (i + 0.5) / 20 * BOUND / (1 - BOUND)) ** n for i in range(20)) / 20 >= 1 / ALPHA)
    assert by_hand == 88
    assert next(n for n in range(1, 1000) if (1 - BOUND) ** n <= ALPHA) == 59
    test = share.SequentialShareTest(BOUND, ALPHA)
    assert test.add([0] * (by_hand - 1)).verdict is None
    decision = test.add([0] * 50 + [1] * 50)  # the outcomes after the decision are not used
    assert (decision.verdict, decision.n, decision.events) == ("supported", by_hand, 0)
    assert decision.p_value <= ALPHA and decision.ci[1] < BOUND and decision.ci[0] == 0.0
    assert decision.refute_p_value == 1.0


def test_a_twenty_percent_share_is_refuted():
    """One event in every five outcomes (share 0.2, four times the bound): refuted, and quickly."""
    decision = share.SequentialShareTest(BOUND, ALPHA).add([1, 0, 0, 0, 0] * 40)
    assert decision.verdict == "refuted" and decision.n < 60
    assert decision.refute_p_value <= ALPHA and decision.ci[0] > BOUND and decision.p_value == 1.0
    assert decision.ci[0] <= decision.share <= decision.ci[1]


def test_a_share_at_the_bound_stays_open_and_the_budget_end_makes_it_inconclusive():
    test = share.SequentialShareTest(BOUND, ALPHA)
    assert test.add([1] + [0] * 19).verdict is None
    for _ in range(24):
        decision = test.add([1] + [0] * 19)
    assert decision.verdict is None and decision.n == 500 and decision.events == 25
    final = test.decision(exhausted=True)
    assert final.verdict == "inconclusive" and final.ci[0] < BOUND < final.ci[1]


def _null_errors(seed: int = 11) -> tuple[int, int]:
    """Runs (of RUNS) called supported and refuted at any of LENGTH looks, on outcomes with a share exactly BOUND."""
    outcomes = np.random.default_rng(seed).random((RUNS, LENGTH)) < BOUND
    codes, _ = share.first_decisions(outcomes, BOUND, ALPHA)
    return int((codes == SUPPORTED).sum()), int((codes == REFUTED).sum())


def _calibrated(hits: int) -> bool:
    """The error rate is at most alpha: the upper end of its Wilson 95 % interval over RUNS runs is <= alpha."""
    return wilson_interval(hits, RUNS)[1] <= ALPHA


def test_always_valid_at_a_share_exactly_at_the_bound_with_a_look_after_every_outcome():
    """Both nulls hold at a share of exactly 5 % (the e-values are martingales there): the rate of ever being called
    supported, and of ever being called refuted, within 500 outcomes looked at one by one, is at most alpha."""
    supported, refuted = _null_errors()
    assert _calibrated(supported), f"supported in {supported}/{RUNS} null runs"
    assert _calibrated(refuted), f"refuted in {refuted}/{RUNS} null runs"


def _peeking_bet(k, n, bound, bets):
    """Mutant: a bettor who sees each outcome before betting stakes the most on clean ones and nothing on events."""
    return (np.asarray(n, float) - np.asarray(k, float)) * -math.log1p(-bound) + 0 * bets[0]


def _fixed_n_p_value(k, n, bound, bets):
    """Mutant: the exact one-sided binomial p-value of a fixed n, read as 1/E at every look."""
    return -np.log(stats.binom.cdf(np.asarray(k), np.asarray(n), bound))


@pytest.mark.parametrize("mutant", [_peeking_bet, _fixed_n_p_value], ids=["peeking bet", "fixed-n p at every look"])
def test_the_calibration_check_catches_a_mutant(monkeypatch, mutant):
    monkeypatch.setattr(share, "log_e_below", mutant)
    supported, _ = _null_errors()
    assert not _calibrated(supported)
    assert wilson_interval(supported, RUNS)[0] > ALPHA, f"mutant supported in {supported}/{RUNS} null runs"


@pytest.mark.parametrize("outcomes, true_share, verdict, at_least", [
    (120, 0.0, SUPPORTED, 0.99), (200, 0.01, SUPPORTED, 0.7), (200, 0.15, REFUTED, 0.9),
    (800, 0.02, SUPPORTED, 0.9), (800, 0.10, REFUTED, 0.9)])
def test_power_per_profile(outcomes, true_share, verdict, at_least):
    """The power quoted for the PET spec's budgets (``specs.support.graded.PET_MAX_EPISODES``: ~120, ~200 and ~800
    outcomes under quick, default and full), over 1,000 simulated runs: the lower Wilson bound clears the floor."""
    runs = np.random.default_rng(5).random((1000, outcomes)) < true_share
    codes, _ = share.first_decisions(runs, BOUND, ALPHA)
    assert wilson_interval(int((codes == verdict).sum()), 1000)[0] >= at_least


def test_many_runs_agree_with_the_one_run_object_fed_at_once_one_by_one_or_in_blocks():
    rng = np.random.default_rng(3)
    outcomes = rng.random((30, 300)) < rng.uniform(0, 0.15, (30, 1))
    codes, at = share.first_decisions(outcomes, BOUND, ALPHA)
    for row, code, n in zip(outcomes, codes, at):
        decision = share.SequentialShareTest(BOUND, ALPHA).add(row)
        assert decision.verdict == {SUPPORTED: "supported", REFUTED: "refuted", CONTINUE: None}[int(code)]
        assert decision.n == n
        # the interval excludes the bound exactly when the test decided
        assert (decision.ci[1] < BOUND) == (code == SUPPORTED) and (decision.ci[0] > BOUND) == (code == REFUTED)
    one_by_one = share.SequentialShareTest(BOUND, ALPHA)
    for outcome in outcomes[0]:
        one_by_one.add([outcome])
    in_blocks = share.SequentialShareTest(BOUND, ALPHA)
    for block in np.array_split(outcomes[0], 7):
        in_blocks.add(block)
    assert one_by_one.decision() == in_blocks.decision() == share.SequentialShareTest(BOUND, ALPHA).add(outcomes[0])


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(StatsInputError, match="bound on the share"):
        share.SequentialShareTest(1.5)
    with pytest.raises(StatsInputError, match="booleans or 0/1"):
        share.SequentialShareTest(BOUND).add([0, 2])
    with pytest.raises(StatsInputError, match=r"\(runs, T\) array of 0/1"):
        share.first_decisions([0, 1, 0], BOUND)
