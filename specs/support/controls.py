"""Negative controls: models or data sets on which a spec's claim is plausible beforehand but should not hold, so
that a check which also holds there is *vacuous*.

Each returns an edited *copy* (the agent under test is never touched): randomly initialised networks of the same
architecture (model randomisation), the agent blind to one vehicle (``hide_rows``), Q negated, and, for invariances
that hold for any weights of the real architecture (row permutation, masked rows), a model with a deliberately
broken part. Every control must be able to pass: ``tests/test_controls_can_pass.py`` shows, spec by spec, a planted
model or data set on which it does.
"""
from __future__ import annotations

import numpy as np

import copy
import dataclasses

import torch

from interp.model.hooks import HookPoint


def _copy(model):
    clone = copy.deepcopy(model)
    clone.eval()
    return clone


def silenced_head(model, head: int):
    """The head still attends but writes nothing: its slice of attention_combine is zero."""
    clone = _copy(model)
    d = clone.attention_layer.features_per_head
    with torch.no_grad():
        clone.attention_layer.attention_combine.weight[:, head * d:(head + 1) * d] = 0.0
    return clone


def uniform_attention(model):
    """Every head attends uniformly over present rows (zero queries): no head can prefer any vehicle."""
    clone = _copy(model)
    with torch.no_grad():
        clone.attention_layer.query_ego.weight.zero_()
    return clone


def negated_q(model):
    """Every Q-value negated: every preference between actions reversed (slowing where the agent keeps speed,
    more willing to keep speed where the agent becomes less willing)."""
    clone = _copy(model)
    with torch.no_grad():
        clone.output_layer.predict.weight.neg_()
        clone.output_layer.predict.bias.neg_()
    return clone


def hide_rows(obs, rows):
    """The scenes as an agent blind to one vehicle per scene sees them: row ``rows[i]`` of scene ``i`` marked absent
    (presence 0, features zeroed). Absent rows get no attention and do not move the Q-values (the absent-rows
    spec checks this), so any model on these scenes is that model edited to ignore the vehicle."""
    hidden = np.array(obs, dtype=np.float32)  # np.array copies: the caller's scenes are never edited
    idx = np.arange(len(hidden))
    hidden[idx, np.asarray(rows)] = 0.0
    return hidden


def randomly_initialised(agent, init_seed: int):
    """A network of the agent's architecture with fresh random weights (the model-randomisation test)."""
    from interp.simulation.agent import untrained_agent

    return untrained_agent(agent.agent_config, agent.env_config, init_seed=init_seed).model


def random_network_role_head(agent, init_seed: int, calibration_obs, calibration_rows):
    """A randomly initialised network and the head the crossing role would resolve to on it (the head whose argmax
    falls most often on the nearest crossing vehicle of the calibration scenes), as for the agent."""
    from interp.probes.attention import argmax_share

    model = randomly_initialised(agent, init_seed)
    return model, int(argmax_share(model, calibration_obs, calibration_rows).best_head)


def _hooked(model, name: str, fn):
    """A copy whose hook point ``name`` always applies ``fn`` (a permanent, deliberate breakage)."""
    clone = _copy(model)
    point: HookPoint = clone.hook_dict[name]
    point.register_forward_hook(lambda _m, _i, out: fn(out))
    return clone


def broken_presence_mask(model):
    """The presence mask disabled: absent rows are attended to like present ones."""
    return _hooked(model, "hook_mask", torch.zeros_like)


def row_order_leak(model, scale: float = 0.05):
    """The others' embeddings get a row-index offset: the model now depends on the (shuffled) row order."""
    def leak(embedded: torch.Tensor) -> torch.Tensor:
        offset = torch.arange(embedded.shape[1], dtype=embedded.dtype).view(1, -1, 1) * scale
        return embedded + offset
    return _hooked(model, "others_embedding.hook_hidden.1" if "others_embedding.hook_hidden.1" in model.hook_dict
                   else "others_embedding.hook_hidden.0", leak)


# ------------------------------------------------------------------------------------------ data-set controls
def aa_control(engine, agent, baseline_records, first_seed: int, *, alpha: float, min_effect: float,
               batch_pairs: int, direction: str = "increase", outcome: str = "crashed") -> tuple[bool, str]:
    """A/A: the plain agent on a disjoint seed range, paired index by index with the baseline records and tested
    like a treatment (the same sequential test, the same looks). There is no true difference, so the test must not
    call it one; it "holds" (the spec would end vacuous) only by a false positive, at most ``alpha`` of the time
    (the test is always valid; calibrated on real records in tests/test_stats_real_aa.py)."""
    from interp.stats import SequentialPairedTest

    base = [bool(getattr(r, outcome)) for r in baseline_records]
    other = [bool(getattr(r, outcome)) for r in engine.run(agent, range(first_seed, first_seed + len(base)))]
    test = SequentialPairedTest(alpha=alpha, direction=direction, max_pairs=len(base), min_effect=min_effect)
    for i in range(0, len(base), batch_pairs):
        if test.stopped:
            break
        test.update(base[i:i + batch_pairs], other[i:i + batch_pairs])
    verdict = test.verdict()
    return verdict.verdict == "supported", f"A/A on disjoint seeds: {verdict.summary()}"


def random_role_share_quantile(make_random_model, calibration_obs, calibration_rows, obs, rows, inits: int = 10,
                               q: float = 0.95) -> float:
    """The q-quantile, over randomly initialised networks, of the test share of the head each would resolve to
    the role on the calibration scenes (random ego-attention networks are already drawn to near vehicles)."""
    from interp.probes.attention import argmax_share

    shares = []
    for i in range(inits):
        model = make_random_model(i)
        best = int(argmax_share(model, calibration_obs, calibration_rows).best_head)
        shares.append(float(argmax_share(model, obs, rows).share[best]))
    return float(np.quantile(shares, q))


def random_spread_quantile(make_random_model, pairs, inits: int = 20, q: float = 0.95) -> float:
    """The q-quantile of the side-preference spread over ``inits`` randomly initialised networks: random weights
    already give heads some side preference, so specialisation must exceed it to count."""
    from specs.support.claims import side_preference_spread

    return float(np.quantile([side_preference_spread(make_random_model(i), *pairs) for i in range(inits)], q))


def with_extra_vehicle(builder, scenes, extra, conflicting: bool) -> list[tuple]:
    """Each scene again with one more car ``extra`` (a ``VehicleSpec``), kept only where it is observed and its
    conflict with the ego is as asked: (observation without, observation with) pairs. With a conflicting car
    near the conflict point this is the added-vehicle control (the action should change there)."""
    import dataclasses

    from fixtures.scenario import ScenarioError

    pairs = []
    for scene in scenes:
        scenario = dataclasses.replace(scene.scenario, vehicles=(*scene.scenario.vehicles, extra))
        try:
            added = builder.build(scenario, allow_unobserved=True)
        except ScenarioError:
            continue
        if added.rows.get(extra.name) is not None and added.relations[extra.name].conflicts_with_ego == conflicting:
            pairs.append((scene.observation, added.observation))
    return pairs


def graded_aa_control(engine, agent, baseline_records, first_seed: int, *, design, batch_pairs: int,
                      outcome) -> tuple[bool, str]:
    """A/A for a graded outcome: the plain agent on a disjoint seed range (same-seed pairs would be identical
    episodes), paired index by index with the baseline records and tested by the same graded sequential test. It
    "holds" (the spec would end vacuous) only by a false positive, at most ``design.alpha`` of the time."""
    from interp.statistics.graded import GradedPairedFamily

    base = [outcome(r) for r in baseline_records]
    other = [outcome(r) for r in engine.run(agent, range(first_seed, first_seed + len(base)))]
    family = GradedPairedFamily({"A/A": None}, dataclasses.replace(design, max_pairs=len(base)))
    for i in range(0, len(base), batch_pairs):
        if family.stopped:
            break
        family.update(base[i:i + batch_pairs], {"A/A": other[i:i + batch_pairs]})
    verdict = family.verdicts()["A/A"]
    return verdict.verdict == "supported", f"A/A on disjoint seeds: {verdict.summary()}"
