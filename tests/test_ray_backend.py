"""The Ray backend: the same pool API on Ray actors gives records identical to the local worker processes.

Starts one local Ray instance (2 CPUs) for the module, ~10 s. Deselect with ``-m "not ray"``.
"""
from __future__ import annotations

import pytest

from interp.simulation.rollout import RolloutEngine, Start
from interp.simulation.pools import make_pool
from interp.simulation.workers import Reset, Step
from tests.rollout_support import EmptyRoad, FailingSetup, near_tie_agent

pytestmark = pytest.mark.ray
SEEDS = [3, 4]


@pytest.fixture(scope="module")
def ray_instance():
    pytest.importorskip("ray")
    from interp.simulation.ray_backend import ensure_ray, shutdown

    ray = ensure_ray(num_cpus=2)
    yield ray
    shutdown()


@pytest.fixture(scope="module")
def tie():
    return near_tie_agent(duration=3)


def test_ray_backend_records_identical_to_local_processes(ray_instance, tie):
    starts = [*SEEDS, Start(SEEDS[0], setup=EmptyRoad())]
    conditions = {"plain": None, "ablate1": ([("attention_layer.hook_z", _zero_head(1))], {"zero head": 1})}
    with RolloutEngine(workers=0, slots=1, cache=None) as local:
        expected = local.run(tie, starts, conditions, trace=True)
    with RolloutEngine(workers=2, slots=3, backend="ray", cache=None) as on_ray:
        got = on_ray.run(tie, starts, conditions, trace=True)
        pool = on_ray._pool
        assert type(pool).__name__ == "RayEnvPool" and pool.n_workers == 2
        # The raw pool API on the same actors, and a worker's error reaching the caller with its message.
        first = pool.run({0: Reset(seed=1), 1: Reset(seed=2)})
        assert set(first) == {0, 1} and first[0].rows[0] == 0
        assert set(pool.run({1: Step(0)})) == {1}
        with pytest.raises(RuntimeError, match="planted set-up failure"):
            pool.run({0: Reset(seed=1, setup=FailingSetup())})
    assert got == expected


def test_ray_pool_refuses_more_workers_than_cpus(ray_instance):
    with pytest.raises(ValueError, match="CPUs"):
        make_pool(near_tie_agent().env_config, 8, 5, backend="ray")


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown rollout backend"):
        make_pool({}, 1, 0, backend="dask")


def _zero_head(head: int):
    def hook(z, _hook):
        z = z.clone()
        z[:, head] = 0.0
        return z

    return hook


def test_a_ray_worker_that_dies_has_its_episodes_rescheduled(ray_instance, tie, tmp_path):
    """The actor's process is SIGKILLed mid-command: the engine starts new actors and reruns the episodes."""
    from tests.rollout_support import KillWorker

    marker = tmp_path / "killed"
    starts = [SEEDS[0], Start(SEEDS[1], setup=KillWorker(marker)), SEEDS[1]]
    marker.touch()
    with RolloutEngine(workers=0, slots=1, cache=None) as local:
        expected = local.run(tie, starts)
    marker.unlink()
    with RolloutEngine(workers=2, slots=2, backend="ray", cache=None) as on_ray:
        with pytest.warns(RuntimeWarning, match="Ray environment worker died"):
            got = on_ray.run(tie, starts)
        assert on_ray.stats.restarts == 1
    assert marker.exists() and got == expected
