"""Head roles (interp.roles, interp.role_selectivity): the fit is the OLS with scene dummies, temperature matching
hits the target entropy, the max statistic keeps its error rate on networks the null was not drawn from, planted
heads resolve (and only to their category), the causal rule reads the sequential verdicts with Holm across heads x
outcomes and ``unmeasured`` under a small budget, the seed map is disjoint, and the spec side skips unresolved roles.

Rate tests count tries and assert the 95 % Wilson bound: an always-on version on the 4-head architecture with few
tries (a bound that can still fail), and the full version (2, 4 and 8 heads, ``RS.RATE_TRIES`` = 240 tries) behind
``-m slow``; networks trained by the real trainer (short, or with shuffled rewards) are behind ``-m slow`` too."""
from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest
import torch
from statsmodels.stats.proportion import proportion_confint

from interp import role_selectivity as RS
from interp import roles as R
from interp import seeds as S

ARCHITECTURES = {2: "checkpoints/reference-2h", 4: "checkpoints/reference", 8: "checkpoints/zoo-1000/8h-s1"}
CROSSING_LOGITS = 4.0  # planted preference for the nearest crossing vehicle (score units)
NEAR_SLOPE = -0.3  # planted score change per metre of distance (peaked on the nearest vehicle)
SPEED_LOGITS = 4.0  # planted preference for a speed band (not a category)
SHORT_EPISODES = 50  # "trained <= 100 episodes": ~530 transitions, ~460 gradient steps, epsilon still ~0.97
SHUFFLED_EPISODES = 100  # trained with each replay sample's rewards permuted (interp.training.train.Trainer.learn)


# ------------------------------------------------------------------------------------------ the statistics, known answers
def _toy(seed: int = 0, b: int = 60, n: int = 6):
    """Random scenes: vehicle rows 1..k, categories and distances, and scores with known slopes."""
    rng = np.random.default_rng(seed)
    vehicles = np.zeros((b, n), bool)
    for i in range(b):
        vehicles[i, 1:1 + rng.integers(1, n)] = True
    masks = {c: vehicles & (rng.random((b, n)) < 0.4) for c in RS.VEHICLE_CATEGORIES}
    distance = np.where(vehicles, rng.uniform(5, 80, (b, n)), 0.0)
    return vehicles, masks, distance, rng


def test_the_within_scene_fit_is_ols_with_scene_dummies():
    """Known answer: the design's slopes equal statsmodels OLS of the scores on the categories, distance and one
    dummy per scene (scenes with >= 2 vehicles), on each half."""
    import statsmodels.api as sm

    vehicles, masks, distance, rng = _toy()
    scores = rng.normal(size=vehicles.shape) + 2.0 * masks["crossing"] - 0.05 * distance
    design = RS.build_design(masks, distance, vehicles)
    ours = RS.raw_statistics(design, scores[None])[:, 0]  # [2, P]
    # the ego statistic: mean over scenes of ego score minus mean vehicle score
    ego = [scores[s, 0] - scores[s][vehicles[s]].mean() for s in RS.halves(len(scores))[0]]
    assert ours[0, 0] == pytest.approx(np.mean(ego))
    for h, half in enumerate(RS.halves(len(scores))):
        rows = [(s, r) for s in half if vehicles[s].sum() >= 2 for r in np.flatnonzero(vehicles[s])]
        scene = np.array([s for s, _ in rows])
        x = np.column_stack([[masks[c][s, r] for s, r in rows] for c in RS.VEHICLE_CATEGORIES]
                            + [[distance[s, r] for s, r in rows]]).astype(float)
        dummies = (scene[:, None] == np.unique(scene)[None]).astype(float)
        fit = sm.OLS(np.array([scores[s, r] for s, r in rows]), np.column_stack([x, dummies])).fit()
        np.testing.assert_allclose(ours[h, 1:], fit.params[:x.shape[1]], atol=1e-8)
        assert design.testable[h].all()
        # the statistics are the OLS t-values (same residual degrees of freedom: rows - scenes - slopes)
        np.testing.assert_allclose(RS.statistics(design, scores[None])[h, 0, 1:], fit.tvalues[:x.shape[1]],
                                   rtol=1e-7)
    from scipy import stats as st

    assert RS.statistics(design, scores[None])[0, 0, 0] == pytest.approx(st.ttest_1samp(ego, 0.0).statistic)


def test_a_category_without_within_scene_variation_is_untestable_and_says_why():
    vehicles, masks, distance, rng = _toy(1)
    masks["behind"] = np.zeros_like(vehicles)
    design = RS.build_design(masks, distance, vehicles)
    assert not design.testable[:, RS.CATEGORIES.index("behind")].any()
    null = RS.make_null(design, rng.normal(size=(40, 2, *vehicles.shape)), (0, 40))
    sel = RS.test_selectivity(design, null, rng.normal(size=(vehicles.shape[0], 2, vehicles.shape[1])))
    assert sel.roles["behind"] == [] and sel.reasons["behind"].startswith("untestable")


def test_temperature_matching_reaches_the_target_entropy():
    vehicles, masks, distance, rng = _toy(2)
    design = RS.build_design(masks, distance, vehicles)
    v, valid = RS._vehicle_scores(design, rng.normal(size=(30, *vehicles.shape)) * 0.01)
    curves = RS.entropy_curves(v, valid)
    assert np.all(np.diff(curves, axis=-1) <= 1e-12)  # entropy never rises with the multiplier
    target = np.linspace(0.05, 0.9, 30) * curves[:, 0]
    log_t = RS.matching_log_temperature(v, valid, curves, target)
    np.testing.assert_allclose(RS._entropy(v, valid, log_t), target, atol=1e-8)


def test_monte_carlo_p_values_known_answer():
    null = np.arange(1.0, 100.0)[:, None, None]  # 99 draws 1..99, one head, one statistic
    two = np.array([False])
    assert RS._p_values(null, np.array([[99.0]]), two, False)[0, 0] == pytest.approx(2 / 100)
    assert RS._p_values(null, np.array([[100.0]]), two, False)[0, 0] == pytest.approx(1 / 100)
    assert RS._p_values(null, np.array([[0.0]]), np.array([True]), False)[0, 0] == pytest.approx(1 / 100)  # lower tail
    loo = RS._p_values(null, None, two, True)[:, 0, 0]
    assert loo[-1] == pytest.approx(1 / 99) and loo[0] == pytest.approx(1.0)


def test_the_max_statistic_holds_alpha_when_the_agent_is_drawn_like_the_null():
    """Exchangeability check of the min-p adjustment on synthetic heads: networks drawn from the null's own
    distribution get any role in at most alpha of tries (0 tolerance for a bug that skips the adjustment: the
    unadjusted rule would fire on ~ 1 - 0.95^(2 x 8) = 56 % of them)."""
    vehicles, masks, distance, rng = _toy(3, b=80)
    design = RS.build_design(masks, distance, vehicles)
    features = rng.normal(size=(*vehicles.shape, 5))

    def net(k):  # a random "head" = random linear readout of per-row features, random sharpness
        w = np.random.default_rng(1000 + k).normal(size=(2, 5))
        return np.einsum("bnf,hf->hbn", features, w) * np.exp(np.random.default_rng(k).normal())

    null = RS.make_null(design, np.stack([net(k) for k in range(319)]), (0, 319))
    fired = sum(any(RS.test_selectivity(design, null, np.moveaxis(net(10_000 + k), 0, 1), alpha=0.05).roles.values())
                for k in range(60))
    assert proportion_confint(fired, 60, 0.05, "wilson")[1] <= 0.15, fired


# ------------------------------------------------------------------------------------------ real networks
def calibration_material() -> tuple:
    """(obs, masks, distance, design) of the role calibration scenes: what every rate test and
    ``benchmarks/role_rates.py`` / ``role_hits.py`` measure on."""
    from fixtures.role_scenes import calibration as build
    from interp.simulation.agent import load_agent

    agent = load_agent(ARCHITECTURES[4])
    obs, masks, distance = build(agent.env_config)
    return obs, masks, distance, R.calibration_design(obs, masks, distance)


@pytest.fixture(scope="module")
def calibration():
    return calibration_material()


_ARCH: dict[int, tuple] = {}


def architecture(n_heads: int, calibration):
    """(trained agent, tempered-null material) of an architecture (cached on disk by ``interp.roles``)."""
    if n_heads not in _ARCH:
        from interp.simulation.agent import load_agent

        obs, _, _, design = calibration
        agent = load_agent(ARCHITECTURES[n_heads])
        null = R.null_for(agent.model, obs, design, list(S.init_seeds("role_null", RS.n_null(n_heads))))
        _ARCH.clear()
        _ARCH[n_heads] = (agent, null)
    return _ARCH[n_heads]


def _fresh_scores(agent, obs, k: int, scale: float = 1.0) -> np.ndarray:
    """[B, H, N] scores of fresh random network k (init seeds the null never used), query weights x ``scale``."""
    seed = S.init_seeds("role_null_check", 400)[k]
    net = R.random_networks(agent.model, [seed])[0]
    with torch.no_grad():
        net.attention_layer.query_ego.weight.mul_(scale)
    return R.head_scores(net, obs)


def _trained_seed(shuffle: bool, k: int) -> int:
    """Training seed of try k: the condition's first range, then its continuation (``interp.seeds``)."""
    name = "role_check_shuffled" if shuffle else "role_check_short"
    return [*range(*S.INITS[name]), *range(*S.INITS[f"{name}_more"])][k]


def _trained(agent, k: int, shuffle: bool):
    """Try k's network of ``agent``'s architecture trained by the real trainer, short or with shuffled rewards
    (training seeds ``interp.seeds.INITS["role_check_short"]`` / ``["role_check_shuffled"]``), cached by
    ``interp.training.role_networks`` (a rerun trains nothing, an interrupted one resumes)."""
    from interp.training.role_networks import trained_network

    return trained_network(agent, _trained_seed(shuffle, k), SHUFFLED_EPISODES if shuffle else SHORT_EPISODES,
                           shuffle_rewards=shuffle)


def _plant(scores: np.ndarray, vehicles: np.ndarray, add: np.ndarray, head: int = 0) -> np.ndarray:
    """Head ``head``'s vehicle scores plus ``add`` [B, N] (the random network's own preferences stay)."""
    out = scores.copy()
    out[:, head] = np.where(vehicles, out[:, head] + add, out[:, head])
    return out


def _speed(obs: np.ndarray) -> np.ndarray:
    return 20.0 * np.hypot(obs[:, :, 3], obs[:, :, 4])  # vx, vy normalised by the env's [-20, 20] m/s range


def _conditions(calibration):
    """name -> (make scores [B, H, N] for try k of an agent's architecture, hit(selectivity) -> bool, kind)."""
    obs, masks, distance, design = calibration
    veh = design.vehicles
    speed = _speed(obs)
    lo, hi = np.quantile(speed[veh], [0.3, 0.7])
    band = ((speed >= lo) & (speed <= hi)).astype(float)
    vehicle_roles = [c for c in RS.CATEGORIES if c != "ego"]

    def any_vehicle_role(sel):
        return any(sel.roles[c] for c in vehicle_roles)

    def shuffled(agent, k):
        rng = np.random.default_rng(k)
        scores = R.head_scores(agent.model, obs)
        for b in range(len(obs)):
            rows = np.flatnonzero(veh[b])
            scores[b][:, rows] = scores[b][:, rng.permutation(rows)]
        return scores

    def uniform(agent, k):
        scores = _fresh_scores(agent, obs, k)
        scores[:, 0] = np.where(veh, 0.0, scores[:, 0])
        scores[:, 0, 0] = -20.0  # the ego ignored
        return scores

    return {
        "random x1": (lambda a, k: _fresh_scores(a, obs, k), lambda s: any(s.roles.values()), "null"),
        "random x3": (lambda a, k: _fresh_scores(a, obs, k, 3.0), lambda s: any(s.roles.values()), "null"),
        "random x30": (lambda a, k: _fresh_scores(a, obs, k, 30.0), lambda s: any(s.roles.values()), "null"),
        "random x30 crossing": (lambda a, k: _fresh_scores(a, obs, k, 30.0), lambda s: bool(s.roles["crossing"]),
                                "null"),
        "trained, shuffled among vehicles": (shuffled, any_vehicle_role, "null"),
        f"trained {SHORT_EPISODES} episodes": (lambda a, k: R.head_scores(_trained(a, k, False).model, obs),
                                               lambda s: any(s.roles.values()), "null"),
        f"trained {SHUFFLED_EPISODES} episodes, shuffled rewards": (
            lambda a, k: R.head_scores(_trained(a, k, True).model, obs), lambda s: any(s.roles.values()), "null"),
        "planted speed band": (lambda a, k: _plant(_fresh_scores(a, obs, k), veh, SPEED_LOGITS * band),
                               any_vehicle_role, "null"),
        "planted uniform ignoring the ego": (uniform, lambda s: any(0 in h for h in s.roles.values()), "null"),
        "planted crossing": (lambda a, k: _plant(_fresh_scores(a, obs, k), veh,
                                                 CROSSING_LOGITS * masks["crossing"]),
                             lambda s: 0 in s.roles["crossing"], "positive"),
        "planted nearest": (lambda a, k: _plant(_fresh_scores(a, obs, k), veh, NEAR_SLOPE * distance),
                            lambda s: 0 in s.roles["proximity"] and 0 not in s.roles["crossing"]
                            and s.statistic[:, 0, RS.CATEGORIES.index("proximity")].max() < 0, "positive"),
    }


def _tries(calibration, n_heads: int, name: str, tries: int):
    """Whether each of ``tries`` tries of condition ``name`` on the ``n_heads`` architecture got (or, planted,
    resolved) a role, one try at a time, with progress on stderr for long runs (``HYPODRIVE_ROLE_RATES_LOG``)."""
    make, hit, _ = _conditions(calibration)[name]
    agent, null = architecture(n_heads, calibration)
    trained = R.trained_null_for(n_heads, calibration[0], calibration[3])  # the rule as find_roles applies it
    hits = 0
    for k in range(tries):
        got = bool(hit(RS.test_selectivity(calibration[3], null, make(agent, k), trained=trained)))
        hits += got
        if os.environ.get("HYPODRIVE_ROLE_RATES_LOG"):  # progress of long runs (benchmarks/role_rates.py)
            print(f"  {name} ({n_heads} heads): {hits}/{k + 1}", file=sys.stderr, flush=True)
        yield got


def _run(calibration, n_heads: int, name: str, tries: int) -> tuple[int, int]:
    return sum(_tries(calibration, n_heads, name, tries)), tries


def _assert_rate(name: str, kind: str, hits: int, n: int, bound: float, record_property) -> None:
    low, high = proportion_confint(hits, n, alpha=0.05, method="wilson")
    record_property(name, f"{hits}/{n} (95% Wilson CI {low:.3f}-{high:.3f})")
    print(f"{name}: {hits}/{n} (95% Wilson CI {low:.3f}-{high:.3f})")
    if kind == "null":  # a role where there is none: the upper bound
        assert high <= bound, f"{name}: {hits}/{n} got a role; upper bound {high:.3f} > {bound}"
    else:  # a planted preference: resolves in >= 95 % of tries
        assert hits / n >= 0.95, f"{name}: resolved in {hits}/{n} tries only"


NAMES = ("random x1", "random x3", "random x30", "random x30 crossing", "trained, shuffled among vehicles",
         "planted speed band", "planted uniform ignoring the ego", "planted crossing", "planted nearest")


@pytest.mark.parametrize("name", NAMES)
def test_role_rates_on_the_4_head_architecture(calibration, name, record_property):
    """Always-on version: 12 tries; a null condition's 95 % Wilson upper bound must stay <= 40 % (at most 1 hit of
    12; 2 hits fail), a planted preference must resolve in >= 95 % of tries (12/12). ``-m slow`` runs the full
    version with the 5 % bound."""
    hits, n = _run(calibration, 4, name, 12)
    _assert_rate(name, _conditions(calibration)[name][2], hits, n, 0.40, record_property)


def _require_slow(request) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow: run with -m slow")


@pytest.mark.slow
@pytest.mark.parametrize("n_heads", (2, 4, 8))
@pytest.mark.parametrize("name", NAMES)
def test_role_rates_full(calibration, n_heads, name, record_property, request):
    """Full version: ``RS.RATE_TRIES`` (240) tries per architecture; null conditions' 95 % Wilson upper bound
    <= 5 % (at most 5 hits of 240: a rule of true rate ALPHA = 0.01 passes with probability 0.965, one of rate 0.05
    with 0.018; see ``interp.role_selectivity``), planted preferences resolve in >= 95 % of tries."""
    _require_slow(request)
    hits, n = _run(calibration, n_heads, name, RS.RATE_TRIES)
    _assert_rate(f"{name} ({n_heads} heads)", _conditions(calibration)[name][2], hits, n, 0.05, record_property)


@pytest.mark.slow
def test_the_full_rate_test_turns_red_on_a_rule_at_alpha_0_05(calibration, monkeypatch, record_property, request):
    """The safeguard against its failure: the same rule with the family-wise alpha at 0.05 (the null unchanged)
    gives random networks a role in about 5 % of tries, and the full rate test (240 tries, 95 % Wilson upper
    bound <= 5 %) rejects it (a rule of rate 0.05 passes with probability 0.018)."""
    _require_slow(request)
    original = RS.test_selectivity
    monkeypatch.setattr(RS, "test_selectivity", lambda d, n, s, **kw: original(d, n, s, alpha=0.05))
    hits, n = _run(calibration, 4, "random x1", RS.RATE_TRIES)
    high = proportion_confint(hits, n, 0.05, "wilson")[1]
    record_property("random x1 at alpha 0.05 (4 heads)", f"{hits}/{n} (95% Wilson upper {high:.3f})")
    print(f"random x1 at alpha 0.05 (4 heads): {hits}/{n} (95% Wilson upper {high:.3f})")
    assert high > 0.05, f"a rule at alpha 0.05 passed the full rate test: {hits}/{n}"


TRAINED_NAMES = (f"trained {SHORT_EPISODES} episodes", f"trained {SHUFFLED_EPISODES} episodes, shuffled rewards")
# At most this many trained networks per condition. Why 480 and not RATE_TRIES (240): short training is not a draw
# from the null (50 episodes move a head's t-statistics from init's single digits to 40-70 for `ahead` or
# `oncoming`), so its role rate sits above the rule's design rate of 1 %: 4/240 on 2 heads, where the always-valid
# test is supported within 240 tries in only 60 % of runs (simulated at 1.7 %), within 480 in 93 % (99.7 % at
# 1 %; a true 5 % passes in 2.7 %). Raising the maximum after an inconclusive run keeps the error guarantee: the
# test is always valid, so optional continuation is allowed (test_the_sequential_rate_test_has_the_stated_power).
TRAINED_MAX_TRIES = 480


def _run_until_decided(calibration, n_heads: int, name: str, max_tries: int):
    """Tries of a null condition fed one by one to the always-valid share test of "a role in < 5 % of tries"
    (``interp.statistics.share``), stopping at its decision: a clean condition is supported after 88 tries, a
    rate of 1 % within 240 in 88 % of runs, a rate of 5 % in 2 % (simulated in
    ``test_the_sequential_rate_test_has_the_stated_power``). Valid at whichever try it stops (Ville)."""
    from interp.statistics.share import SequentialShareTest

    test = SequentialShareTest(bound=0.05, alpha=0.05)
    for got in _tries(calibration, n_heads, name, max_tries):
        if test.add([got]).verdict is not None:
            break
    return test.decision(exhausted=True)


def test_the_sequential_rate_test_has_the_stated_power():
    """The numbers ``_run_until_decided`` states, on simulated hit sequences (4000 runs of 240 tries each)."""
    from interp.statistics.inputs import SUPPORTED
    from interp.statistics.share import first_decisions

    rng = np.random.default_rng(0)
    for rate, low, high in ((0.0, 1.0, 1.0), (0.01, 0.85, 0.90), (0.05, 0.0, 0.05)):
        codes, at = first_decisions((rng.random((4000, RS.RATE_TRIES)) < rate).astype(int), 0.05, 0.05)
        assert low <= (codes == SUPPORTED).mean() <= high, rate
    for rate, low, high in ((0.01, 0.99, 1.0), (0.017, 0.90, 0.95), (0.05, 0.0, 0.05)):  # TRAINED_MAX_TRIES
        codes, at = first_decisions((rng.random((4000, TRAINED_MAX_TRIES)) < rate).astype(int), 0.05, 0.05)
        assert low <= (codes == SUPPORTED).mean() <= high, rate
    codes, at = first_decisions(np.zeros((1, RS.RATE_TRIES), int), 0.05, 0.05)
    assert codes[0] == SUPPORTED and at[0] == 88


def test_the_sequential_rate_test_turns_red_where_roles_resolve(calibration):
    """The full trained-network test's rule against its failure: fed a condition that resolves a role on every
    try (the planted crossing head), it refutes "below 5 %" within a few tries instead of passing."""
    decision = _run_until_decided(calibration, 4, "planted crossing", RS.RATE_TRIES)
    assert decision.verdict == "refuted" and decision.n < 12 and decision.events == decision.n


@pytest.mark.slow
@pytest.mark.parametrize("n_heads", (2, 4, 8))
@pytest.mark.parametrize("name", TRAINED_NAMES)
def test_role_rates_on_trained_networks_20_tries(calibration, n_heads, name, record_property, request):
    """Networks the null was not drawn from, trained by the real trainer (``_trained``: one training run per try,
    ~10-20 s for 50 episodes on one core): 20 tries, 95 % Wilson upper bound <= 25 % (at most 1 hit; 2 fail), what
    fits a shared machine. Trained networks are cached, so these are the full version's first 20."""
    _require_slow(request)
    hits, n = _run(calibration, n_heads, name, 20)
    _assert_rate(f"{name} ({n_heads} heads)", "null", hits, n, 0.25, record_property)


@pytest.mark.slow
@pytest.mark.parametrize("n_heads", (2, 4, 8))
@pytest.mark.parametrize("name", TRAINED_NAMES)
def test_role_rates_on_trained_networks(calibration, n_heads, name, record_property, request):
    """Full version: "a role in < 5 % of tries" must be supported by the always-valid sequential share test
    (``_run_until_decided``, at most ``TRAINED_MAX_TRIES`` tries): one training run per try, so it stops as soon
    as the evidence suffices (88 tries when no try resolves a role) instead of always training them all."""
    _require_slow(request)
    decision = _run_until_decided(calibration, n_heads, name, TRAINED_MAX_TRIES)
    label = f"{name} ({n_heads} heads)"
    summary = (f"{decision.events}/{decision.n} got a role; always-valid 95 % CI {decision.ci[0]:.3f}-"
               f"{decision.ci[1]:.3f}; {decision.verdict}")
    record_property(label, summary)
    print(f"{label}: {summary}")
    assert decision.verdict == "supported", f"{label}: {summary} (a role rate below 5 % not shown)"


def test_a_rule_comparing_score_units_with_an_untempered_null_is_caught_by_the_rate_tests(calibration, monkeypatch):
    """The safeguard against its failure: statistics in score units against a null left at its own temperature
    (the flaw of a sharpness-blind rule) give sharp random networks (query x30) roles, so the 'random x30' rate
    test turns red; the scale-free statistic is what prevents it."""
    original = RS.test_selectivity
    monkeypatch.setattr(RS, "matching_log_temperature", lambda v, valid, curves, target: np.zeros(curves.shape[:-1]))
    monkeypatch.setattr(RS, "test_selectivity", lambda d, n, s, **kw: original(d, n, s, scale_free=False))
    hits, n = _run(calibration, 4, "random x30", 6)
    assert hits >= 4, f"untempered score-unit null: only {hits}/{n} sharp random networks got a role"


def test_the_statistics_do_not_move_with_temperature_and_matching_reaches_the_head_entropy(calibration):
    obs, _, _, design = calibration
    agent, null = architecture(4, calibration)
    scores = np.moveaxis(R.head_scores(agent.model, obs), 1, 0)
    np.testing.assert_allclose(RS.statistics(design, 7.0 * scores), RS.statistics(design, scores), atol=1e-9)
    sel = RS.test_selectivity(design, null, np.moveaxis(scores, 0, 1))
    valid = RS._vehicle_scores(design, scores)[1]
    np.testing.assert_allclose(RS._entropy(null.vehicle_scores, valid, sel.null_log_temperature),
                               np.broadcast_to(sel.entropy, sel.null_log_temperature.shape), atol=1e-6)


def test_the_reference_role_map_reports_statistic_p_value_and_null_quantile(calibration):
    obs, masks, distance, _ = calibration
    agent, _ = architecture(4, calibration)
    att = R.attention_roles(agent.model, obs, masks, distance)
    assert att.n_null == RS.n_null(4) == 3600  # 4 heads x 9 tests (proximity's two tails) / 0.01
    data = R.RoleMap(agent.identity, 4, att, R.unmeasured_causal("test")).to_dict()
    cell = data["heads"][0]["selectivity"]["crossing"]
    assert set(cell) >= {"statistic", "p_value", "quantile"} and len(cell["statistic"]) == 2
    assert set(data["roles"]) == set(R.ROLES) and "near" not in data["roles"]


# ------------------------------------------------------------------------------------------ causal roles
@dataclasses.dataclass
class _V:
    verdict: str
    effect: float

    def to_dict(self):
        return {"verdict": self.verdict, "effect": self.effect, "ci": [self.effect - 0.1, self.effect + 0.1], "n": 100,
                "p_value": 0.001 if self.verdict == "supported" else 0.5}


def test_causal_roles_list_supported_heads_by_effect_and_explain_unresolved(monkeypatch):
    import interp.simulation.rollout as rollout_module

    calls = []

    def fake(engine, agent, conditions, *, seeds, design, outcome, **kw):
        calls.append((outcome, design.direction, seeds))
        assert design.alpha == pytest.approx(0.025)  # alpha / 2 per outcome: error <= alpha over both
        table = {"crashed": [("supported", 0.1), ("supported", 0.3), ("refuted", 0.0)],
                 "arrived": [("inconclusive", -0.02), ("refuted", 0.0), ("refuted", 0.01)]}[outcome]
        return type("Result", (), {"verdicts": {f"ablate head {h}": _V(*table[h]) for h in range(3)}})()

    monkeypatch.setattr(rollout_module, "run_sequential", fake)
    agent = type("Agent", (), {"n_heads": 3})()
    cz = R.causal_roles(object(), agent, max_pairs=60)
    assert cz.roles == {"safety": [1, 0], "progress": []}
    assert "head 1" in cz.reasons["safety"] and "no head's ablation lowers arrivals" in cz.reasons["progress"]
    assert [(o, d) for o, d, _ in calls] == [("crashed", "increase"), ("arrived", "decrease")]
    assert all(seeds == S.episode_seeds("calibration", 60) for _, _, seeds in calls)
    assert [h["p_holm"] for h in cz.effects["collisions"]] == pytest.approx([0.002, 0.002, 1.0])  # x 2 outcomes


def _effects(p_supported: float, verdicts=("supported", "refuted")) -> dict:
    return {m: [{"verdict": v, "effect": 0.3 if m == "collisions" else -0.3, "ci": [0.1, 0.5], "n": 40,
                 "p_value": p_supported if v == "supported" else 0.6} for v in verdicts]
            for m in ("collisions", "arrivals")}


def test_roles_follow_the_families_verdicts_with_p_adjusted_across_outcomes():
    """Each outcome's family (alpha / 2, Holm across heads) decides; the reported p is its Holm p x 2 (both
    outcomes), so a head supported at p 0.02 within its family reports 0.04 across heads x outcomes."""
    cz = R.decide_causal(_effects(0.02), alpha=0.05)
    assert cz.roles == {"safety": [0], "progress": [0]}
    assert cz.effects["collisions"][0]["p_holm"] == pytest.approx(0.04)
    assert cz.effects["arrivals"][1]["verdict"] == "refuted"


def test_a_small_budget_reports_undecided_heads_as_unmeasured_not_refuted():
    cz = R.decide_causal(_effects(0.001), decides_only=True, min_effect=0.2, max_pairs=280)
    assert cz.roles == {"safety": [0], "progress": [0]}
    assert cz.effects["collisions"][1]["verdict"] == "unmeasured"
    cz = R.decide_causal(_effects(0.5, ("refuted", "inconclusive")), decides_only=True, min_effect=0.2, max_pairs=280)
    assert cz.roles == {"safety": [], "progress": []}
    assert cz.reasons["progress"].startswith("unmeasured: this budget (280 pairs) decides only changes of at least 20%")
    assert {v["verdict"] for v in cz.effects["arrivals"]} == {"unmeasured"}
    # without the small budget the same heads are not unmeasured: the rule can say both
    assert R.decide_causal(_effects(0.5, ("refuted", "inconclusive"))).effects["arrivals"][0]["verdict"] == "refuted"


def test_an_unmeasured_role_skips_as_unmeasured_and_the_report_keeps_the_verdict():
    from reports.schema import VERDICTS
    from specs.support import roles as SR
    from specs.support.evidence import entry_verdict

    res = SR.RoleResolution("progress", (), reason="unmeasured: this budget (280 pairs) decides only ...")
    with pytest.raises(pytest.skip.Exception, match="^unmeasured: the progress role") as info:
        SR.require(res)
    assert "unmeasured" in VERDICTS and res.to_dict()["measured"] is False

    class Report:
        longrepr = ("f", 1, f"Skipped: {info.value.msg}")

    assert entry_verdict(None, False, "skipped", Report()) == "unmeasured"


# ------------------------------------------------------------------------------------------ the seed map
def test_the_seed_map_is_disjoint_and_guards_its_ranges():
    S.check_disjoint()
    assert S.episode_seeds("calibration", 10) == range(300_000, 300_010)
    with pytest.raises(ValueError, match="leave its range"):
        S.episode_seeds("heldout", 800, offset=S.MAX_SEED_OFFSET + 9_500)
    calibration, held_out = set(S.episode_seeds("calibration", 800)), set(S.episode_seeds("ablation", 800, 89_000))
    assert not calibration & held_out


# ------------------------------------------------------------------------------------------ the spec side
def test_an_unresolved_role_is_not_applicable_and_pins_override():
    from specs.support import roles as SR

    data = {"n_heads": 2, "roles": {"crossing": [], "ego": [1, 0]}, "reasons": {"crossing": "no head beats it"},
            "heads": [{"head": h, "selectivity": {"crossing": {"statistic": [0.1, 0.2]}, "ego": {"statistic": [0.5, 0.5]}},
                       "effects": {}} for h in range(2)]}
    res = SR.resolutions(data, {}, 2)
    assert res["ego"].head == 1 and res["crossing"].head is None
    with pytest.raises(pytest.skip.Exception, match="^not-applicable: the crossing role did not resolve"):
        SR.require(res["crossing"])
    assert SR.resolutions(data, {"crossing": 0}, 2)["crossing"].head == 0
    with pytest.raises(ValueError, match="heads 0..1"):
        SR.resolutions(data, {"crossing": 5}, 2)


def test_resolutions_of_a_category_never_seen_stay_json_clean():
    import json

    from specs.support import roles as SR

    data = {"n_heads": 1, "roles": {"behind": []}, "reasons": {"behind": "too few"},
            "heads": [{"head": 0, "selectivity": {"behind": {"statistic": [None, None]}}, "effects": {}}]}
    res = SR.resolutions(data, {}, 1)
    json.dumps({k: r.to_dict() for k, r in res.items()}, allow_nan=False)  # the report refuses NaN


def test_the_roles_command_prints_roles_with_reasons_and_writes_the_role_map(tmp_path, monkeypatch, capsys):
    import json

    from interp.cli import main

    monkeypatch.setenv("HYPODRIVE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "roles.json"
    assert main(["roles", "--checkpoint", "checkpoints/reference", "--no-causal", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and line.split()}
    assert "UNRESOLVED" in lines["crossing"]  # measured, no head selective
    assert "UNMEASURED" in lines["safety"] and "not measured: --no-causal" in lines["safety"]  # no verdict at all
    data = json.loads(out.read_text())
    assert set(data["roles"]) == set(R.ROLES) and len(data["heads"]) == 4
    assert data["null"]["networks"] == RS.n_null(4) and data["stability"]["categories"] == 7
    assert list((tmp_path / "cache" / "roles").glob(f"{data['identity']}-attention-*.json"))  # cached per identity


def test_a_role_map_with_an_attention_role_says_what_the_role_does_not_mean():
    """A printed role map that holds an attention role carries the rule's measured limit (shuffled-reward training
    creates roles too); one without any attention role does not print it. Role maps of bundled agents, as written
    by ``python -m interp roles --json``."""
    import json
    from pathlib import Path

    held = json.loads(Path("docs/results/data/zoo-1000/4h-s3/roles.json").read_text())  # proximity on head 1
    none = json.loads(Path("docs/results/data/zoo-1000/4h-s1/roles.json").read_text())
    assert held["roles"]["proximity"] and not any(none["roles"][c] for c in RS.CATEGORIES)
    # the 4-head architecture's trained null is complete: the role beat both nulls, and the note says so
    assert held["null"]["trained"]["applied"] and R.ATTENTION_ROLE_MEANING_TRAINED in R.format_roles(held)
    # the same map as if the trained null had not been applied: the measured limit, with the null's size
    untested = {**held, "null": {**held["null"], "trained": {**held["null"]["trained"], "applied": False}}}
    assert R.ATTENTION_ROLE_MEANING + " (this architecture's trained null holds 900" in R.format_roles(untested)
    for note in (R.ATTENTION_ROLE_MEANING, R.ATTENTION_ROLE_MEANING_TRAINED):
        assert note not in R.format_roles(none)
