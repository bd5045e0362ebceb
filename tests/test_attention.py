"""Attention patterns, attention to target rows and argmax shares, against the planted network."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from interp.probes import attention as A
from interp.errors import ConfigError
from tests import planted as P

PLANTED_OBS = (300, 21)  # observations of the shared `obs` fixture (tests/conftest.py): count, seed


def test_planted_patterns_mask_absent_rows_and_map_to_vehicles(model, obs):
    rng = np.random.default_rng(0)
    present = obs[..., P.PRESENCE] >= 0.5
    rows = np.where(present, rng.integers(100, 10_000, size=present.shape), A.EMPTY_ROW)
    ev = A.attention_patterns(model, obs, rows)
    assert ev.n_heads == 2 and ev.pattern.shape == (300, 2, P.N_ROWS)
    assert np.all(ev.pattern[~np.broadcast_to(present[:, None], ev.pattern.shape)] == 0)
    np.testing.assert_allclose(ev.pattern.sum(-1), 1, atol=1e-6)
    b = 7
    for r in np.flatnonzero(present[b]):
        assert ev.by_vehicle[b][int(rows[b, r])] == pytest.approx(list(ev.pattern[b, :, r]))
    assert len(ev.by_vehicle[b]) == present[b].sum()
    # the silent head is uniform (normalised entropy 1), head 0 is sharp
    np.testing.assert_allclose(ev.mean_normalised_entropy[P.SILENT_HEAD], 1.0, atol=1e-5)
    assert ev.mean_normalised_entropy[P.PLANTED_HEAD] < 0.5
    json.dumps(ev.to_dict())


def test_planted_argmax_share_picks_the_closest_vehicle_for_head0_only(model, obs):
    ev = A.argmax_share(model, obs, P.closest_row(obs))
    assert ev.share[P.PLANTED_HEAD] == 1.0 and ev.beats_chance[P.PLANTED_HEAD] and ev.best_head == P.PLANTED_HEAD
    assert ev.p_value[P.PLANTED_HEAD] < 1e-10
    assert ev.share[P.SILENT_HEAD] == 0.0 and not ev.beats_chance[P.SILENT_HEAD]  # uniform: ties count as misses
    k = (obs[..., P.PRESENCE] >= 0.5).sum(1)
    assert ev.chance == pytest.approx(np.mean(1 / k))
    assert ev.ci_low[0] < 1 and ev.ci_high[0] == pytest.approx(1.0)


def test_argmax_share_negative_controls_reject(model, obs):
    # randomised weights: head 0 no longer tracks the closest vehicle
    ev = A.argmax_share(P.randomised_copy(model, 0), obs, P.closest_row(obs))
    assert not ev.beats_chance.any()
    # the planted head with a wrong target (the farthest vehicle) never hits it
    far = np.where(obs[..., P.PRESENCE] >= 0.5, P.closeness(obs), np.inf)
    far[:, 0] = np.inf
    several = (obs[..., P.PRESENCE] >= 0.5).sum(1) >= 3  # with one other vehicle, farthest = closest
    ev = A.argmax_share(model, obs, np.where(several, far.argmin(1), -1))
    assert ev.share[P.PLANTED_HEAD] == 0.0 and not ev.beats_chance[P.PLANTED_HEAD]


def test_planted_attention_to_the_closest_vehicle_and_chance(model, obs):
    ev = A.attention_to(model, obs, P.closest_row(obs))
    assert ev.n == len(obs)
    assert ev.mean_share[P.PLANTED_HEAD] > 0.8 > ev.mean_chance
    np.testing.assert_allclose(ev.share[:, P.SILENT_HEAD], ev.chance, atol=1e-6)  # uniform = chance, exactly
    # the same through a vehicle-id mapping
    rows = np.where(obs[..., P.PRESENCE] >= 0.5, np.arange(P.N_ROWS)[None] + 50, A.EMPTY_ROW)
    mask = A.rows_of_vehicles(rows, [[int(r) + 50] for r in P.closest_row(obs)])
    np.testing.assert_allclose(A.attention_to(model, obs, mask).share, ev.share)


def test_attention_to_negative_control_randomised_weights(model, obs):
    ev = A.attention_to(P.randomised_copy(model, 0), obs, P.closest_row(obs))
    assert abs(ev.mean_share[P.PLANTED_HEAD] - ev.mean_chance) < 0.1


def test_poisson_binomial_matches_the_binomial_when_probabilities_are_equal():
    for hits in (0, 3, 9, 20):
        assert A.poisson_binomial_sf(hits, np.full(20, 0.3)) == pytest.approx(stats.binom.sf(hits - 1, 20, 0.3))


def test_bad_targets_say_what_is_wrong(model, obs):
    with pytest.raises(ConfigError, match="target_row must be"):
        A.argmax_share(model, obs, np.zeros(3, dtype=int))
    with pytest.raises(ConfigError, match="no scene has a present target"):
        A.attention_to(model, obs, np.full(len(obs), -1))
    with pytest.raises(ConfigError, match="row -> vehicle"):
        A.attention_patterns(model, obs, np.zeros((2, 2)))
