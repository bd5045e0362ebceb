"""Scene building, branching and fuzz rollouts on the fast simulator are identical to the plain simulator:
the same observation and ground truth for every canonical scene and for generated scenes, and the same
branched rollouts (observations, actions, rewards, endings) under a policy that reacts to what it sees."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from fixtures.branching import branch
from fixtures.builder import SceneBuilder
from fixtures.canonical import CANONICAL
from fixtures.strategies import scenarios
from interp.simulation import fastsim
from tests.rollout_support import ENV_CONFIG
from interp.model.config import load_env_config

STEPS = 8


@pytest.fixture(scope="module")
def builders():
    env = load_env_config(ENV_CONFIG)
    return SceneBuilder(env, fast_sim=False), SceneBuilder(env)


def _reactive(obs: np.ndarray) -> int:
    """A policy whose action depends on the observation: brakes when any other vehicle is near."""
    present = obs[1:, 0] > 0.5
    near = present & (np.hypot(obs[1:, 1], obs[1:, 2]) < 0.15)
    return 0 if near.any() else 2


def _same(plain_builder, fast_builder, scenario) -> None:
    plain, fast = plain_builder.build(scenario), fast_builder.build(scenario)
    np.testing.assert_array_equal(plain.observation, fast.observation)
    assert dict(plain.rows) == dict(fast.rows) and plain.nearest_crossing == fast.nearest_crossing
    a, b = branch(plain, _reactive, STEPS), branch(fast, _reactive, STEPS)
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert (a.terminated, a.truncated) == (b.terminated, b.truncated)


def test_the_default_builder_is_accelerated(builders):
    plain, fast = builders
    assert fastsim.is_enabled(fast.env) and not fastsim.is_enabled(plain.env)


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_canonical_scenes_and_their_branches_are_identical_on_the_fast_simulator(builders, name):
    _same(*builders, CANONICAL[name])


GENERATED = 40  # hypothesis examples, derandomized: the same scenes on every run
MIN_ACCEPTED = GENERATED // 4  # the comparison must see real scenes, not only refusals


def compare_or_refuse(plain_builder, fast_builder, scenario) -> bool:
    """Both builders build ``scenario`` and their scenes and branches are identical (True), or both refuse it
    with the same ``ScenarioError`` message (False); anything else fails."""
    from fixtures.scenario import ScenarioError

    errors = []
    for builder in (plain_builder, fast_builder):
        try:
            builder.build(scenario)
            errors.append(None)
        except ScenarioError as err:
            errors.append(str(err))
    assert errors[0] == errors[1], f"plain builder: {errors[0]!r}; fast builder: {errors[1]!r}"
    if errors[0] is not None:
        return False
    _same(plain_builder, fast_builder, scenario)
    return True


def test_generated_scenes_and_their_branches_are_identical_on_the_fast_simulator(builders):
    outcomes: list[bool] = []

    @settings(max_examples=GENERATED, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(scenario=scenarios(max_vehicles=6))
    def check(scenario) -> None:
        outcomes.append(compare_or_refuse(*builders, scenario))

    check()
    print(f"{sum(outcomes)} of {len(outcomes)} generated scenes accepted by both builders, the rest refused by both")
    assert sum(outcomes) >= MIN_ACCEPTED, f"only {sum(outcomes)} of {len(outcomes)} generated scenes were built"


class _Refusing:
    """A planted builder that refuses every scene (as a broken fast path might)."""

    def __init__(self, builder) -> None:
        self.env = builder.env

    def build(self, scenario):
        from fixtures.scenario import ScenarioError

        raise ScenarioError("planted refusal")


def test_a_builder_that_refuses_where_the_other_builds_fails_the_comparison(builders):
    plain, fast = builders
    scene = CANONICAL[sorted(CANONICAL)[0]]
    assert compare_or_refuse(plain, fast, scene)  # the control: both build it, identically
    with pytest.raises(AssertionError, match="planted refusal"):
        compare_or_refuse(plain, _Refusing(fast), scene)
    with pytest.raises(AssertionError, match="planted refusal"):
        compare_or_refuse(_Refusing(plain), fast, scene)
    assert compare_or_refuse(_Refusing(plain), _Refusing(fast), scene) is False  # counted as refused, not accepted
