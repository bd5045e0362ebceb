"""Resampling-ablation draws are keyed by the decision (episode seed, step, row, condition), never by the bits
of the observation: a 1-ulp change in an input does not move the donor, and each key field does."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from interp.model import draws
from interp.probes import interventions as I
from tests import planted as P

PLANTED_OBS = (60, 21)
KEYS = [draws.DrawKey(episode=7, step=t, row=0, condition="description:x") for t in range(60)]


def donors(model, obs: np.ndarray, ref: np.ndarray, keys, seed: int = 0) -> np.ndarray:
    """The reference scene each row's planted-head z was taken from, found by exact equality of z."""
    ablation = I.head_ablation([P.PLANTED_HEAD], "resample", reference=ref, seed=seed)
    with draws.keyed(keys):
        z = I.activations(model, obs, I.Z_HOOK, ablation.hooks(model))[:, P.PLANTED_HEAD].reshape(len(obs), -1)
    ref_z = I.activations(model, ref, I.Z_HOOK)[:, P.PLANTED_HEAD].reshape(len(ref), -1)
    match = (z.numpy()[:, None] == ref_z.numpy()[None]).all(axis=-1)  # [B, R]
    assert (match.sum(1) >= 1).all(), "a row's z equals no reference scene's z: the ablation did not resample"
    return match.argmax(1)


def one_ulp_up(obs: np.ndarray) -> np.ndarray:
    """Every row with its ego x moved up by one float32 ulp."""
    out = obs.copy()
    out[:, 0, P.FEATURES.index("x")] = np.nextafter(out[:, 0, P.FEATURES.index("x")], np.float32(np.inf))
    return out


def hash_of_bytes_donor(row: np.ndarray, seed: int, n: int) -> int:
    """The draw rule this module replaces (a blake2b hash of the row's float32 bytes under the seed): the
    control that shows a 1-ulp change is visible to a rule that reads the observation."""
    digest = hashlib.blake2b(np.ascontiguousarray(row, np.float32).tobytes(), digest_size=8,
                             key=int(seed).to_bytes(8, "little", signed=True)).digest()
    return int.from_bytes(digest, "little") % n


def test_a_one_ulp_change_in_an_input_does_not_move_the_donor(model, obs):
    ref = obs[:30]
    nudged = one_ulp_up(obs)
    assert (nudged != obs).any(axis=(1, 2)).all()  # every row's bytes changed
    np.testing.assert_array_equal(donors(model, nudged, ref, KEYS), donors(model, obs, ref, KEYS))


def test_control_a_draw_from_the_observations_bytes_moves_under_the_same_change(obs):
    nudged = one_ulp_up(obs)
    moved = sum(hash_of_bytes_donor(a, 0, 30) != hash_of_bytes_donor(b, 0, 30) for a, b in zip(obs, nudged))
    assert moved >= len(obs) // 2  # ~29/30 of rows move under such a rule


@pytest.mark.parametrize("field", ["episode", "step", "row", "condition", "scenario"])
def test_every_key_field_moves_the_draw_and_the_same_key_repeats_it(field):
    """Changing one field redraws (a new donor for ~1 - 1/30 of keys); the same key always draws the same."""
    base = [draws.DrawKey(episode=e, step=3, row=1, condition="c", scenario=None) for e in range(200)]
    other = {"episode": lambda k: draws.DrawKey(k.episode + 1000, k.step, k.row, k.condition, k.scenario),
             "step": lambda k: draws.DrawKey(k.episode, k.step + 1, k.row, k.condition, k.scenario),
             "row": lambda k: draws.DrawKey(k.episode, k.step, k.row + 1, k.condition, k.scenario),
             "condition": lambda k: draws.DrawKey(k.episode, k.step, k.row, "d", k.scenario),
             "scenario": lambda k: draws.DrawKey(k.episode, k.step, k.row, k.condition, "abc")}[field]
    first = [draws.draw_index(k, 0, 30) for k in base]
    assert first == [draws.draw_index(k, 0, 30) for k in base]
    moved = sum(a != draws.draw_index(other(k), 0, 30) for a, k in zip(first, base))
    assert moved >= 150  # expected 193 of 200; binomial(200, 29/30) falls below 150 with p < 1e-30


def test_donors_are_uniform_over_the_reference_scenes():
    """Chi-square goodness of fit of 3000 draws over 10 donors (scipy); the seed of the intervention matters."""
    from scipy import stats

    keys = [draws.DrawKey(episode=e, step=s) for e in range(100) for s in range(30)]
    counts = np.bincount([draws.draw_index(k, 5, 10) for k in keys], minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-4
    assert [draws.draw_index(k, 5, 10) for k in keys[:50]] != [draws.draw_index(k, 6, 10) for k in keys[:50]]


def test_installed_keys_must_match_the_batch():
    with draws.keyed(KEYS[:2]), pytest.raises(ValueError, match="one key per row"):
        draws.current(3)
    assert draws.current(2) == tuple(draws.DrawKey(row=b) for b in range(2))  # none installed: row positions
    with pytest.raises(ValueError, match="cannot draw"):
        draws.draw_index(KEYS[0], 0, 0)
