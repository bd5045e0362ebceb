"""``python -m interp evaluate --no-cache`` writes identical records whatever the layout: worker processes,
slots and backend, with and without a head ablation, and under a resampling ablation through the engine.

Records carry ``q_digest``, the sha256 of every step's Q-value bits, so "identical" means the network computed
the same bits at every decision, not only that the actions happened to agree (on the reference agent a batched
forward changes most Q-values in the last bits and almost never an action). Why this cannot pass by luck:
``test_a_batched_forward_in_q_rows_fails_the_layout_test`` plants that leak and shows these comparisons catch
it, after checking that batched and per-row bits differ on the very observations of these episodes; and
``test_control_draws_from_a_shared_stream_fail_the_layout_test`` does the same for random interventions."""
from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pytest
import torch

from interp.cli import main
from interp.model import draws, policy
from interp.model.hooks import HookPoint
from interp.probes import interventions as I
from interp.simulation.agent import load_agent
from interp.simulation.records import Condition
from interp.simulation.rollout import RolloutEngine
from tests.planted import ROOT
from tests.rollout_support import random_obs

REFERENCE = ROOT / "checkpoints" / "reference"
SEEDS = range(20, 25)
LAYOUTS = {"1 worker": ["--workers", "1"], "2 workers": ["--workers", "2"],
           "1 slot": ["--workers", "1", "--slots", "1"], "8 slots": ["--workers", "2", "--slots", "8"]}
ENGINE_LAYOUTS = {"in process, 1 slot": {"workers": 0, "slots": 1}, "1 worker, 4 slots": {"workers": 1, "slots": 4},
                  "2 workers, 8 slots": {"workers": 2, "slots": 8}}


def _evaluate(tmp_path, name: str, extra: list[str]) -> list[dict]:
    out = tmp_path / f"{name.replace(' ', '_')}.json"
    assert main(["evaluate", "--checkpoint", str(REFERENCE), "--episodes", str(len(SEEDS)), "--seed", str(SEEDS[0]),
                 "--no-cache", "--no-progress", "--ablate-head", "1", "--compare", "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())["episodes"]


def differences(by_layout: Mapping[str, list[dict]]) -> dict[str, list[str]]:
    """Layout -> what differs from the first layout's records: 'actions', 'outcomes' or 'q bits' per episode."""
    (_, first), *others = by_layout.items()
    out: dict[str, list[str]] = {}
    for name, records in others:
        found = []
        for a, b in zip(first, records, strict=True):
            where = f"{b['condition']} seed {b['seed']}"
            if a["actions"] != b["actions"]:
                found.append(f"actions ({where})")
            elif (a["crashed"], a["arrived"], a["return"]) != (b["crashed"], b["arrived"], b["return"]):
                found.append(f"outcomes ({where})")
            if a["q_digest"] != b["q_digest"]:
                found.append(f"q bits ({where})")
            if a != b and not found:
                found.append(f"other fields ({where})")
        if found:
            out[name] = found
    return out


def assert_digests(records: list[dict]) -> None:
    assert all(isinstance(r["q_digest"], str) and len(r["q_digest"]) == 64 for r in records)


@pytest.fixture(scope="module")
def by_layout(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layouts")
    return {name: _evaluate(tmp, name, extra) for name, extra in LAYOUTS.items()}


def test_records_are_identical_with_1_or_2_workers_and_1_or_8_slots(by_layout):
    first = next(iter(by_layout.values()))
    assert {e["condition"] for e in first} == {"agent", "ablate_heads=1"} and len(first) == 2 * len(SEEDS)
    assert any(e["crashed"] for e in first) or any(e["arrived"] for e in first)
    assert all("near_ties" in e for e in first)
    assert_digests(first)
    assert differences(by_layout) == {}


@pytest.mark.ray
def test_records_are_identical_on_the_ray_backend(by_layout, tmp_path):
    pytest.importorskip("ray")
    from interp.simulation.ray_backend import shutdown

    try:
        records = _evaluate(tmp_path, "ray", ["--backend", "ray", "--workers", "2"])
    finally:
        shutdown()
    assert differences({"1 worker": by_layout["1 worker"], "ray": records}) == {}


# ------------------------------------------------------------------------- the leak it guards against

def batched_q_rows(model, obs, hooks=(), cache=None, keys=None):
    """The planted leak: ``policy.q_rows`` as one batched forward of every row it is given."""
    assert cache is None, "the planted leak only serves runs without traces"
    x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    x = x[None] if x.ndim == 2 else x
    with torch.no_grad(), draws.keyed(keys if keys is not None else [draws.DrawKey(row=b) for b in range(len(x))]):
        return model.run_with_hooks(x, list(hooks)).numpy(), None


def test_a_batched_forward_in_q_rows_fails_the_layout_test(tmp_path, monkeypatch):
    agent = load_agent(REFERENCE)
    conditions = {"agent": None, "ablate_heads=1": I.head_ablation([1], n_heads=agent.n_heads)}
    with RolloutEngine(workers=0, slots=1, cache=None) as engine:
        traced = engine.run(agent, SEEDS, conditions, trace=True)
    obs = np.concatenate([r.trace.obs for r in traced if r.condition == "agent"])
    per_row = np.concatenate([r.trace.q for r in traced if r.condition == "agent"])
    # first: on these observations, pairs run together give other bits than each row alone (1 torch thread,
    # as the engine runs); otherwise a batched forward would be harmless here and the test would prove nothing
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        paired = np.concatenate([batched_q_rows(agent.model, obs[i:i + 2])[0] for i in range(0, len(obs), 2)])
    finally:
        torch.set_num_threads(before)
    assert not np.array_equal(paired, per_row), "batched and per-row Q bits agree on these inputs"
    assert np.abs(paired - per_row).max() < 1e-3  # the same function, other rounding

    monkeypatch.setattr(policy, "q_rows", batched_q_rows)
    leaky = {name: _evaluate(tmp_path, name, LAYOUTS[name]) for name in ("1 slot", "8 slots")}
    found = differences(leaky)
    assert found and any(d.startswith("q bits") for d in found["8 slots"]), found


# ------------------------------------------------------------------------- random interventions

@pytest.fixture(scope="module")
def reference_agent():
    return load_agent(REFERENCE)


def _engine_records(agent, conditions, layout: Mapping) -> list[dict]:
    with RolloutEngine(cache=None, **layout) as engine:
        return [r.to_dict(trace=False) for r in engine.run(agent, SEEDS, conditions)]


def test_resample_ablation_records_are_identical_whatever_the_layout(reference_agent):
    ablation = I.head_ablation([1], "resample", reference=random_obs(40, 5).numpy(), seed=3,
                               n_heads=reference_agent.n_heads)
    conditions = {"agent": None, "resample_head1": ablation}
    by_layout = {name: _engine_records(reference_agent, conditions, layout) for name, layout in ENGINE_LAYOUTS.items()}
    first = next(iter(by_layout.values()))
    assert_digests(first)
    plain = {r["seed"]: r["q_digest"] for r in first if r["condition"] == "agent"}
    assert all(r["q_digest"] != plain[r["seed"]] for r in first if r["condition"] == "resample_head1")  # it acts
    assert differences(by_layout) == {}


class SharedStreamResample:
    """A planted adversary: head 1's z replaced by a reference scene's drawn from one random stream shared by
    every forward pass of the run, so a row's donor depends on how many rows were drawn before it."""

    def __init__(self, reference: np.ndarray) -> None:
        self.reference = reference

    def hooks(self, model):
        ref = I.activations(model, self.reference, I.Z_HOOK)[:, [1]]
        rng = np.random.default_rng(0)

        def replace(z: torch.Tensor, _hook: HookPoint) -> torch.Tensor:
            out = z.clone()
            out[:, [1]] = ref[torch.as_tensor(rng.integers(len(ref), size=len(z)))]
            return out

        return [(I.Z_HOOK, replace)]


def test_control_draws_from_a_shared_stream_fail_the_layout_test(reference_agent):
    conditions = [Condition("agent"), Condition("shared_stream", hooks=SharedStreamResample(random_obs(40, 5).numpy()).hooks)]
    by_layout = {name: _engine_records(reference_agent, conditions, layout) for name, layout in ENGINE_LAYOUTS.items()}
    found = differences(by_layout)
    assert found and all(d.endswith(")") and "shared_stream" in d for ds in found.values() for d in ds), found
