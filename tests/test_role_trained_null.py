"""The trained role null's bookkeeping (``benchmarks/role_trained_null.py``, ``interp.training.role_networks``,
``interp.seeds.role_null_block``): seed blocks that stay in their range, cache folders that keep the names of
earlier runs, and a committed data file that grows atomically, in index order, and refuses other scenes."""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from benchmarks import role_trained_null as N
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
    monkeypatch.setattr(N, "DATA", tmp_path)
    obs = np.linspace(0, 1, 60).reshape(2, 5, 6)
    design = _design(np.array([[0, 1, 1, 0, 0], [0, 1, 0, 0, 0]], bool))
    digest = N.design_digest(obs, design)
    stats = {i: np.full((2, 4, 2), float(i)) for i in (3, 0, 1)}
    for i, s in stats.items():
        N._append(4, i, s, digest, design.categories)
    N._append(4, 3, np.zeros((2, 4, 2)), digest, design.categories)  # stored once: a rerun changes nothing
    got = N.load(4)
    assert got["index"].tolist() == [0, 1, 3] and got["digest"] == digest and got["categories"] == design.categories
    np.testing.assert_array_equal(got["stats"][:, 0, 0, 0], [0.0, 1.0, 3.0])
    assert not list(tmp_path.glob("*.tmp.npz"))
    other = N.design_digest(obs, _design(np.array([[0, 1, 1, 1, 0], [0, 1, 0, 0, 0]], bool)))
    assert other != digest
    with pytest.raises(SystemExit, match="other calibration scenes"):
        N._append(4, 5, stats[0], other, design.categories)
    assert N.load(4)["index"].tolist() == [0, 1, 3]


def test_the_digest_ignores_last_bits_of_the_observations():
    design = _design(np.ones((2, 5), bool))
    obs = np.linspace(0, 1, 60).reshape(2, 5, 6)
    assert N.design_digest(obs, design) == N.design_digest(obs + 1e-9, design)
    assert N.design_digest(obs, design) != N.design_digest(obs + 1e-3, design)
