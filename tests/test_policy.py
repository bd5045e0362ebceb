"""The greedy policy's rule (``interp.model.policy``): known answers, the near-tie guarantee under perturbation,
and what changes when another CPU is imitated (``ATEN_CPU_CAPABILITY``, ``NPY_DISABLE_CPU_FEATURES``).

None of these tests can pass by platform luck: the rule is checked on Q-values perturbed on purpose (by up
to the guaranteed bound, and by a few ulps), and the other-CPU test compares two real kernel sets and
asserts only what the design guarantees (decisions equal where no near-tie was flagged)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interp.model import policy
from interp.model.policy import NEAR_TIE_TOL, TIE_TOL
from tests.planted import ROOT

SLOWER, IDLE, FASTER = 0, 1, 2


# ----------------------------------------------------------------------------------- known answers

def test_the_best_action_wins_when_clear():
    actions, near = policy.choose(np.array([[0.0, 1.0, 0.5], [2.0, 1.0, 0.0], [0.0, 0.0, 3 * TIE_TOL]]))
    assert actions.tolist() == [IDLE, SLOWER, FASTER] and near.tolist() == [False, False, False]


def test_a_tie_goes_to_the_lowest_index_and_is_flagged():
    q = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0 + TIE_TOL / 2], [1.0 + TIE_TOL / 2, 0.0, 1.0]])
    actions, near = policy.choose(q)
    assert actions.tolist() == [SLOWER, IDLE, SLOWER] and near.all()


def test_near_tie_band_is_twice_the_tie_tolerance():
    """A rival between TIE_TOL and NEAR_TIE_TOL below the best: not tied (the best wins) but flagged."""
    q = np.array([[0.0, 1.0, 1.0 + 1.5 * TIE_TOL], [0.0, 1.0, 1.0 + 2.5 * TIE_TOL]])
    actions, near = policy.choose(q)
    assert actions.tolist() == [FASTER, FASTER] and near.tolist() == [True, False]
    assert NEAR_TIE_TOL == 2 * TIE_TOL


# ----------------------------------------------------------------------------------- the guarantee

q_rows = st.lists(st.floats(-20, 20, allow_nan=False, width=32), min_size=3, max_size=3)
noise = st.lists(st.floats(-0.49 * TIE_TOL, 0.49 * TIE_TOL, allow_nan=False), min_size=3, max_size=3)


@settings(max_examples=500, derandomize=True, deadline=None)
@given(q=q_rows, delta=noise, gap=st.floats(0, 3 * NEAR_TIE_TOL))
def test_a_step_that_is_not_a_near_tie_is_decided_alike_under_any_perturbation_within_the_bound(q, delta, gap):
    """What another CPU's kernels can do (Q-values off by < TIE_TOL / 2 each) never changes a decision that
    was not flagged. ``gap`` places a rival near the decision boundary on purpose."""
    q = np.array(q, np.float32)
    q[int(np.argmin(q))] = q.max() - np.float32(gap)  # a rival at a chosen distance below the best
    action, near = policy.choose(q[None])
    moved, _ = policy.choose((q.astype(np.float64) + np.array(delta))[None])
    if not near[0]:
        assert moved[0] == action[0]


def test_control_without_the_flag_a_perturbation_can_change_the_decision():
    """The guarantee is not vacuous: on flagged steps, perturbations within the same bound do change some
    decisions (so the flag marks exactly where another machine may differ)."""
    rng = np.random.default_rng(0)
    q = rng.normal(size=(2000, 3))
    q[:, 2] = q[:, 1] + rng.uniform(-NEAR_TIE_TOL, NEAR_TIE_TOL, 2000)
    q[:, 0] = np.minimum(q[:, 1], q[:, 2]) - 1.0
    actions, near = policy.choose(q)
    moved, _ = policy.choose(q + rng.uniform(-0.49 * TIE_TOL, 0.49 * TIE_TOL, q.shape))
    assert near.all() and (moved != actions).sum() > 50


def test_a_few_ulps_never_change_a_decision_outside_the_near_tie_band():
    rng = np.random.default_rng(1)
    q = rng.normal(scale=5, size=(5000, 3)).astype(np.float32)
    actions, near = policy.choose(q)
    for direction in (np.inf, -np.inf):
        bumped = q.copy()
        for _ in range(8):  # 8 ulps per value
            bumped = np.nextafter(bumped, np.where(rng.random(q.shape) < 0.5, direction, -direction)).astype(np.float32)
        moved, _ = policy.choose(bumped)
        assert (moved[~near] == actions[~near]).all()


# ----------------------------------------------------------------------------------- another CPU, imitated

def _imitate(tmp_path, name: str, env: dict) -> dict:
    out = tmp_path / f"{name}.pkl"
    subprocess.run([sys.executable, "-m", "tests.cross_cpu_probe", str(out)], cwd=ROOT, check=True,
                   env={**os.environ, **env}, timeout=300)
    with open(out, "rb") as f:
        return pickle.load(f)


def _numpy_dispatch_features() -> str:
    """The SIMD features numpy dispatches to on this CPU beyond its baseline (to switch off)."""
    from numpy._core import _multiarray_umath as umath

    return " ".join(f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f))


@pytest.fixture(scope="module")
def imitated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cpu")
    native = _imitate(tmp, "native", {})
    other = _imitate(tmp, "other", {"ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": _numpy_dispatch_features()})
    return native, other


def test_another_kernel_set_moves_q_values_by_far_less_than_the_guarantee(imitated):
    """Shows what changes on another CPU: Q-values in their last bits (scalar kernels against this CPU's
    SIMD ones), by much less than TIE_TOL / 2."""
    native, other = imitated
    diff = np.abs(native["q_random"] - other["q_random"])
    print(f"kernels {native['capability']} vs {other['capability']}: {np.mean(diff > 0):.1%} of Q-values differ, "
          f"max |dQ| = {diff.max():.2e} (guarantee: {TIE_TOL / 2:.0e})")
    assert diff.max() < TIE_TOL / 2


def test_another_kernel_set_takes_the_same_decisions_wherever_no_near_tie_was_flagged(imitated):
    """Real episodes, simulator and network both on the imitated CPU: every episode without a near-tie step
    has the same actions and outcome; the observations and Q-values may differ in their last bits."""
    native, other = imitated
    for mine, theirs in zip(native["records"], other["records"]):
        assert mine["seed"] == theirs["seed"]
        if mine["near_ties"] == 0 and theirs["near_ties"] == 0:
            assert (mine["actions"], mine["crashed"], mine["arrived"]) == \
                   (theirs["actions"], theirs["crashed"], theirs["arrived"])
            n = min(len(mine["trace"]["q"]), len(theirs["trace"]["q"]))
            assert np.abs(np.asarray(mine["trace"]["q"][:n]) - np.asarray(theirs["trace"]["q"][:n])).max() < TIE_TOL / 2
