"""The trained role null's bookkeeping (``benchmarks/role_trained_null.py``, ``interp.training.role_networks``,
``interp.seeds.role_null_block``): seed blocks that stay in their range, cache folders that keep the names of
earlier runs, and a committed data file that grows atomically, in index order, and refuses other scenes."""
from __future__ import annotations

import os
import types
from pathlib import Path

import numpy as np
import pytest

from benchmarks import role_trained_null as N
from interp import role_trained_null as TN
from interp import seeds as S
from interp.training.role_networks import network_folder


def test_each_network_of_the_null_gets_its_own_block_inside_the_range():
    lo, hi = S.EPISODES["role_null_training"]
    blocks = [S.role_null_block(i) for i in range(N.TARGET * 3)]  # 2, 4 and 8 heads could each take 900
    assert blocks[0] == lo and np.all(np.diff(blocks) == S.ROLE_NULL_BLOCK)
    assert blocks[-1] + S.ROLE_NULL_BLOCK <= hi
    assert N.EPISODES == S.ROLE_NULL_BLOCK
    last = (hi - lo) // S.ROLE_NULL_BLOCK
    with pytest.raises(ValueError, match="no seed block"):
        S.role_null_block(last)
    with pytest.raises(ValueError):
        S.role_null_block(-1)


def test_cache_folders_keep_the_names_of_earlier_runs():
    cache = Path("c")
    assert network_folder(cache, 4, 760, 100, True).name == "4h-seed760-100ep-shuffled-rewards"
    assert network_folder(cache, 2, 500, 50, False).name == "2h-seed500-50ep"
    assert network_folder(cache, 8, 760, 100, True, 0.0).name == "8h-seed760-100ep-shuffled-rewards-gamma0"
    assert (network_folder(cache, 4, 300_000, 100, True, 0.0, 601_000).name
            == "4h-seed300000-100ep-shuffled-rewards-gamma0-env601000")


def _design(vehicles: np.ndarray):
    return types.SimpleNamespace(vehicles=vehicles, categories=("ego", "crossing"))


def test_the_data_file_grows_in_index_order_once_per_network_and_refuses_other_scenes(tmp_path, monkeypatch):
    monkeypatch.setattr(TN, "DATA", tmp_path)
    obs = np.linspace(0, 1, 60).reshape(2, 5, 6)
    design = _design(np.array([[0, 1, 1, 0, 0], [0, 1, 0, 0, 0]], bool))
    digest = TN.design_digest(obs, design.vehicles, design.categories)
    stats = {i: np.full((2, 4, 2), float(i)) for i in (3, 0, 1)}
    for i, s in stats.items():
        N._append(4, i, s, digest, design.categories)
    N._append(4, 3, np.zeros((2, 4, 2)), digest, design.categories)  # stored once: a rerun changes nothing
    got = N.load(4)
    assert got["index"].tolist() == [0, 1, 3] and got["digest"] == digest and got["categories"] == design.categories
    np.testing.assert_array_equal(got["stats"][:, 0, 0, 0], [0.0, 1.0, 3.0])
    assert not list(tmp_path.glob("*.tmp.npz"))
    other = TN.design_digest(obs, np.array([[0, 1, 1, 1, 0], [0, 1, 0, 0, 0]], bool), design.categories)
    assert other != digest
    with pytest.raises(SystemExit, match="other calibration scenes"):
        N._append(4, 5, stats[0], other, design.categories)
    assert N.load(4)["index"].tolist() == [0, 1, 3]


def test_the_digest_ignores_last_bits_of_the_observations():
    design = _design(np.ones((2, 5), bool))
    obs = np.linspace(0, 1, 60).reshape(2, 5, 6)
    assert TN.design_digest(obs, design.vehicles, design.categories) == TN.design_digest(obs + 1e-9, design.vehicles, design.categories)
    assert TN.design_digest(obs, design.vehicles, design.categories) != TN.design_digest(obs + 1e-3, design.vehicles, design.categories)


# ------------------------------------------------------------------------------------------ the test against it
def _null(stats: np.ndarray, categories=("ego", "proximity")) -> TN.TrainedNull:
    return TN.TrainedNull(stats=stats, index=np.arange(len(stats)), categories=categories, digest="x",
                          path=Path("x.npz"))


def test_pooled_bonferroni_p_values_known_answer():
    """9 networks x 2 heads pooled = 18 draws 1..18 per half and test; the two-sided test counts twice, so the family
    is 2 heads x 3 tests = 6."""
    stats = np.arange(1.0, 19.0).reshape(9, 1, 2, 1).repeat(2, axis=1).repeat(2, axis=3)  # [9, 2, 2, 2]
    null = _null(stats)
    two = np.array([False, True])
    testable = np.ones((2, 2), bool)
    agent = np.array([[[19.0, 0.0], [18.0, 10.0]]] * 2)  # [2 halves, 2 heads, 2 tests]
    p = TN.adjusted_p(null, agent, testable, two)
    np.testing.assert_allclose(p[0, 0], [6 * 1 / 19, 6 * 1 / 19])  # beyond all; below all (lower tail)
    np.testing.assert_allclose(p[0, 1], [6 * 2 / 19, 1.0])  # ties count as extreme; 2 x 9/19 x 6 capped at 1
    testable[1, 1] = False  # untestable on half 1: NaN there, and a smaller family (2 heads x 1 test)
    p = TN.adjusted_p(null, agent, testable, two)
    assert np.isnan(p[1, :, 1]).all() and p[1, 0, 0] == pytest.approx(2 / 19)
    with pytest.raises(ValueError, match="architecture"):
        TN.adjusted_p(null, agent[:, :1], testable, two)


def _correlated_draws(rng, n: int, heads: int = 4, p: int = 3) -> np.ndarray:
    """[n, 2, H, P] statistics with a network effect shared by its heads and halves (heads dependent, as trained)."""
    net = rng.standard_t(4, size=(n, 1, 1, p))
    return 2.0 * net + rng.standard_t(4, size=(n, 1, heads, p)) + 0.3 * rng.normal(size=(n, 2, heads, p))


def test_a_network_drawn_like_the_trained_null_gets_a_role_in_at_most_alpha_of_tries():
    """Size of the pooled Bonferroni test with dependent heads and heavy tails: 1,000 networks drawn like the 300
    null networks (3 tests / 0.01 = 300 needed: one one-sided test and a two-sided one, counted twice) get any adjusted p <= 0.01 on both halves in at most
    alpha of tries (99 % one-sided Wilson lower bound <= 0.01). Control: the same p-values unadjusted (the
    Bonferroni factor dropped) fire far more often, so the check can fail."""
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(0)
    null = _null(_correlated_draws(rng, 300, p=2))
    two, testable = np.array([False, True]), np.ones((2, 2), bool)
    agents = _correlated_draws(rng, 1000, p=2)
    adjusted = np.stack([TN.adjusted_p(null, a, testable, two) for a in agents])  # [n, 2, H, P]
    fired = (adjusted.max(axis=1) <= 0.01).any(axis=(1, 2))
    assert proportion_confint(fired.sum(), len(fired), 0.02, "wilson")[0] <= 0.01, fired.sum()
    unadjusted = (adjusted / (4 * 3)).max(axis=1) <= 0.01  # Bonferroni's factor is 4 heads x 3 tests here
    assert proportion_confint(unadjusted.any(axis=(1, 2)).sum(), len(fired), 0.02, "wilson")[0] > 0.01


def test_a_role_needs_both_nulls(monkeypatch):
    """Intersection-union: a planted head beyond every initialised network but inside the trained networks' range
    gets no role; the same head with a trained null that it is beyond gets it; the reason names both nulls."""
    from interp import role_selectivity as RS

    rng = np.random.default_rng(5)
    b, n = 80, 6
    vehicles = np.zeros((b, n), bool)
    for i in range(b):
        vehicles[i, 1:1 + rng.integers(2, n)] = True
    masks = {c: vehicles & (rng.random((b, n)) < 0.4) for c in RS.VEHICLE_CATEGORIES}
    distance = np.where(vehicles, rng.uniform(5, 80, (b, n)), 0.0)
    design = RS.build_design(masks, distance, vehicles)
    features = rng.normal(size=(b, n, 5))

    def net(seed: int, planted: float = 0.0) -> np.ndarray:  # [H=2, B, N]
        w = np.random.default_rng(seed).normal(size=(2, 5))
        s = np.einsum("bnf,hf->hbn", features, w)
        s[0] += planted * masks["crossing"]
        return s

    k = RS.n_null(2)
    null = RS.make_null(design, np.stack([net(s) for s in range(k)]), (0, k))
    agent = np.moveaxis(net(10_000, planted=3.0), 0, 1)
    assert RS.test_selectivity(design, null, agent).roles["crossing"] == [0]
    stat = RS.statistics(design, np.moveaxis(agent, 1, 0))  # [2, H, P]
    j = RS.CATEGORIES.index("crossing")
    need = TN.networks_needed(len(RS.CATEGORIES) + len(RS.TWO_SIDED), RS.ALPHA)
    wide = rng.normal(size=(need, 2, 2, len(RS.CATEGORIES)))
    wide[:, :, :, j] *= 2 * np.abs(stat[:, 0, j]).max()  # trained heads reach the planted head's t
    sel = RS.test_selectivity(design, null, agent, trained=_null(wide, RS.CATEGORIES))
    assert sel.roles["crossing"] == [] and sel.n_trained == need
    assert "trained without task information" in sel.reasons["crossing"]
    narrow = rng.normal(size=(need, 2, 2, len(RS.CATEGORIES)))  # trained heads within |t| ~ 4
    sel = RS.test_selectivity(design, null, agent, trained=_null(narrow, RS.CATEGORIES))
    assert sel.roles["crossing"] == [0] and sel.p_trained[:, 0, j].max() <= RS.ALPHA


def test_an_incomplete_or_foreign_trained_null_is_not_applied_and_the_role_map_says_so(tmp_path, monkeypatch):
    from interp import role_selectivity as RS
    from interp import roles as R

    monkeypatch.setattr(TN, "DATA", tmp_path)
    obs = np.linspace(0, 1, 60).reshape(2, 5, 6)
    design = types.SimpleNamespace(vehicles=np.ones((2, 5), bool), categories=RS.CATEGORIES)
    digest = TN.design_digest(obs, design.vehicles, design.categories)
    stats = np.zeros((10, 2, 4, len(RS.CATEGORIES)))
    np.savez(tmp_path / "4h.npz", index=np.arange(10), stats=stats, digest=np.array(digest),
             categories=np.array(RS.CATEGORIES))
    assert R.trained_null_for(4, obs, design) is None  # 10 of 900 networks
    status = R.trained_null_status(4)
    assert status["networks"] == 10 and status["needed"] == 900 and not status["applied"]
    note = R.role_meaning({"null": {"trained": status}})
    assert note.startswith(R.ATTENTION_ROLE_MEANING) and "10 of 900" in note
    assert R.role_meaning({"null": {"trained": {**status, "applied": True}}}) == R.ATTENTION_ROLE_MEANING_TRAINED
    full = np.zeros((900, 2, 4, len(RS.CATEGORIES)))
    np.savez(tmp_path / "4h.npz", index=np.arange(900), stats=full, digest=np.array(digest),
             categories=np.array(RS.CATEGORIES))
    assert R.trained_null_for(4, obs, design).n_networks == 900
    with pytest.raises(ValueError, match="other calibration scenes"):
        R.trained_null_for(4, obs + 0.01, design)


# Provenance of the committed null: a network retrained by the recipe must agree with its stored statistics on at
# least this share of them (each to 2 % or 0.05). Not "all of them": float32 kernels differ between CPUs, and over
# 100 episodes of greedy actions a last-bit difference can change an action and move a head (measured: the 8-head
# network 0 retrained on another machine agreed on 124 of 128, its ego head's t-values moving 2.7 %). A network trained
# from another seed agrees with network 0 on at most 35 % (the next test checks all 899), so half separates them.
PROVENANCE_AGREEMENT = 0.5


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the statistics of two networks that agree to 2 % (or 0.05; untestable NaNs agree with NaNs)."""
    return float(np.isclose(a, b, rtol=0.02, atol=0.05, equal_nan=True).mean())


@pytest.mark.parametrize("n_heads", (2, 4, 8))
def test_the_provenance_check_rejects_a_network_trained_from_another_seed(n_heads):
    """The check below can fail: every other stored network of the null (another training seed, the same recipe)
    agrees with network 0 on fewer than ``PROVENANCE_AGREEMENT`` of the statistics."""
    stored = TN.load(n_heads)
    if stored is None:
        pytest.skip(f"no trained null of {n_heads} heads yet (benchmarks/role_trained_null.py {n_heads})")
    others = [_agreement(stored.stats[k], stored.stats[0]) for k in range(1, stored.n_networks)]
    assert max(others) < PROVENANCE_AGREEMENT, f"network {1 + int(np.argmax(others))} agrees on {max(others):.0%}"


@pytest.mark.slow
@pytest.mark.parametrize("n_heads", (2, 4, 8))
def test_the_stored_statistics_are_what_the_recipe_trains(n_heads, request):
    """Provenance of the committed data: the architecture's first stored network, retrained here by the job's own
    code path (a fresh cache), agrees with the stored statistics on at least ``PROVENANCE_AGREEMENT`` of them (on
    the CPU that grew the null: all of them). ``-m slow``: one training run (~10-20 s)."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow: run with -m slow")
    import tests.test_roles as T
    from interp import role_selectivity as RS
    from interp import roles as R
    from interp.simulation.agent import load_agent
    from interp.training.role_networks import trained_network

    stored = TN.load(n_heads)
    if stored is None:
        pytest.skip(f"no trained null of {n_heads} heads yet (benchmarks/role_trained_null.py {n_heads})")
    obs, _, _, design = T.calibration_material()
    assert stored.digest == TN.design_digest(obs, design.vehicles, design.categories)
    i = int(stored.index[0])
    net = trained_network(load_agent(T.ARCHITECTURES[n_heads]), S.INITS["role_null_trained"][0] + i,
                          TN.RECIPE["episodes"], shuffle_rewards=True, gamma=TN.RECIPE["gamma"],
                          episode_seed_base=S.role_null_block(i), cache=request.getfixturevalue("tmp_path"))
    again = RS.statistics(design, np.moveaxis(R.head_scores(net.model, obs), 1, 0))
    share = _agreement(again, stored.stats[0])
    print(f"{n_heads} heads: the retrained network {i} agrees with the stored one on {share:.1%} of its statistics")
    assert share >= PROVENANCE_AGREEMENT, (
        f"network {i} retrained here agrees with the stored statistics on only {share:.0%}: the null was not grown "
        f"by this recipe and code (or this CPU moved the run further than measured); regrow it with "
        f"benchmarks/role_trained_null.py {n_heads}")


def test_a_cached_role_map_goes_stale_when_the_trained_null_is_completed(tmp_path, monkeypatch):
    """The attention cache key holds whether the trained null was applied (and which): a map computed before the
    architecture's null was complete is not reused once it is; a null that keeps growing while incomplete does
    not invalidate maps (it is not applied either way)."""
    from interp import roles as R
    from interp import role_selectivity as RS

    monkeypatch.setattr(TN, "DATA", tmp_path)
    agent = types.SimpleNamespace(identity="abc", env_config={}, n_heads=4)

    def store(k: int) -> None:
        np.savez(tmp_path / "4h.npz", index=np.arange(k), stats=np.zeros((k, 2, 4, len(RS.CATEGORIES))),
                 digest=np.array("d"), categories=np.array(RS.CATEGORIES))

    missing = R._attention_key(agent)
    store(10)
    assert R._attention_key(agent) == missing
    store(900)
    complete = R._attention_key(agent)
    assert complete != missing
    store(901)
    assert R._attention_key(agent) != complete


def test_the_stored_null_is_read_once_per_version_of_the_file(tmp_path, monkeypatch):
    """A role map's cache key and its test both load the null: one read, shared read-only; a regrown file (other
    size or modification time) is read afresh, so a memo never serves a stale null."""
    monkeypatch.setattr(TN, "DATA", tmp_path)
    path = tmp_path / "4h.npz"

    def store(k: int, value: float, mtime_ns: int) -> None:
        np.savez(path, index=np.arange(k), stats=np.full((k, 2, 4, 2), value), digest=np.array("d"),
                 categories=np.array(["a", "b"]))
        os.utime(path, ns=(mtime_ns, mtime_ns))

    store(3, 1.0, 10**18)
    first = TN.load(4)
    assert TN.load(4) is first and not first.stats.flags.writeable
    store(3, 2.0, 10**18 + 1)  # same size, rewritten
    assert TN.load(4).stats[0, 0, 0, 0] == 2.0
    store(5, 2.0, 10**18 + 1)  # grown
    assert TN.load(4).n_networks == 5
    path.unlink()
    assert TN.load(4) is None
