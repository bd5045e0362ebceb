"""The hooked EgoAttentionNetwork against an independently written rl-agents forward pass.

The reference forward below is written from ../shared/README.md and rl-agents' ``models.py`` with
einsum on the raw state-dict tensors, in float64, sharing no code with ``interp.model``. A checkpoint
is written in rl-agents' format with ``torch.save`` and read back through ``interp.simulation.agent.load_agent``,
so the whole path a researcher's checkpoint takes is the one under test.
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.simulation.agent import load_agent

ROOT = Path(__file__).resolve().parent.parent
ENV_CONFIG = ROOT / "checkpoints" / "reference" / "env_config.json"
AGENT_CONFIG = ROOT / "checkpoints" / "reference" / "agent_config.json"

N_ENTITIES, N_FEATURES, FEATURE_SIZE, N_ACTIONS = 15, 7, 64, 3
HEAD_COUNTS = [1, 2, 4, 8]

# The table of ../shared/README.md, in rl-agents' parameter order (the order Adam's state follows).
README_PARAMETERS: list[tuple[str, tuple[int, ...]]] = [
    ("ego_embedding.layers.0.weight", (64, 7)), ("ego_embedding.layers.0.bias", (64,)),
    ("ego_embedding.layers.1.weight", (64, 64)), ("ego_embedding.layers.1.bias", (64,)),
    ("others_embedding.layers.0.weight", (64, 7)), ("others_embedding.layers.0.bias", (64,)),
    ("others_embedding.layers.1.weight", (64, 64)), ("others_embedding.layers.1.bias", (64,)),
    ("attention_layer.value_all.weight", (64, 64)), ("attention_layer.key_all.weight", (64, 64)),
    ("attention_layer.query_ego.weight", (64, 64)), ("attention_layer.attention_combine.weight", (64, 64)),
    ("output_layer.layers.0.weight", (64, 64)), ("output_layer.layers.0.bias", (64,)),
    ("output_layer.layers.1.weight", (64, 64)), ("output_layer.layers.1.bias", (64,)),
    ("output_layer.predict.weight", (3, 64)), ("output_layer.predict.bias", (3,)),
]
# rl-agents registers the optional SelfAttention between the embeddings and the ego-attention layer.
SELF_ATTENTION_PARAMETERS: list[tuple[str, tuple[int, ...]]] = [
    (f"self_attention_layer.{name}.weight", (64, 64)) for name in ("value_all", "key_all", "query_all", "attention_combine")
]


def rl_agents_parameters(self_attention: bool) -> list[tuple[str, tuple[int, ...]]]:
    if not self_attention:
        return list(README_PARAMETERS)
    split = 8  # after the two embeddings
    return README_PARAMETERS[:split] + SELF_ATTENTION_PARAMETERS + README_PARAMETERS[split:]


def agent_config(heads: int, self_attention_heads: int | None) -> dict:
    """The reference agent config with the head count (and an optional self-attention layer) changed."""
    config = json.loads(AGENT_CONFIG.read_text())
    config["model"]["attention_layer"]["heads"] = heads
    config["model"]["self_attention_layer"] = (
        None if self_attention_heads is None
        else {"type": "SelfAttention", "feature_size": FEATURE_SIZE, "heads": self_attention_heads}
    )
    return config


def planted_state_dict(self_attention: bool, seed: int) -> dict[str, torch.Tensor]:
    """Random weights for every parameter of the table: activations of order 1 (as in a trained net,
    so float32 rounding stays far below 1e-5) and queries/keys large enough for peaked attention."""
    gen = torch.Generator().manual_seed(seed)
    state_dict = {}
    for name, shape in rl_agents_parameters(self_attention):
        if len(shape) == 1:
            state_dict[name] = torch.randn(shape, generator=gen) * 0.1
        else:
            gain = 2.5 if ("query" in name or "key" in name) else 1.4
            state_dict[name] = torch.randn(shape, generator=gen) * gain / math.sqrt(shape[1])
    return state_dict


def observations(batch: int, seed: int) -> torch.Tensor:
    """Observations with random features and absent rows (presence 0) whose features are NOT zero,
    so that only the mask can keep them out of the attention."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, size=(batch, N_ENTITIES, N_FEATURES)).astype(np.float32)
    present = rng.random((batch, N_ENTITIES)) < 0.6
    present[:, 0] = True  # the ego
    present[0, 1:] = False  # one observation with the ego alone
    obs[:, :, 0] = present.astype(np.float32)
    return torch.from_numpy(obs)


def write_rl_agents_checkpoint(path: Path, state_dict: dict[str, torch.Tensor], self_attention: bool) -> None:
    """rl-agents' DQNAgent.save: {"state_dict", "optimizer"}, the optimizer over parameters in table order.

    Parameter i gets the constant gradient i + 1, so after one Adam step its first moment is 0.1 * (i + 1):
    a loaded optimizer state shows which parameter each moment was recorded for.
    """
    params = [state_dict[name].clone().requires_grad_(True) for name, _ in rl_agents_parameters(self_attention)]
    optimizer = torch.optim.Adam(params, lr=5e-4)
    for i, p in enumerate(params):
        p.grad = torch.full_like(p, float(i + 1))
    optimizer.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state_dict, "optimizer": optimizer.state_dict()}, path)


# ----------------------------------------------------------------------------------------------
# The independent forward pass (float64, einsum, raw tensors).

def _linear(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    out = torch.einsum("...i,oi->...o", x, sd[f"{name}.weight"].double())
    bias = sd.get(f"{name}.bias")
    return out if bias is None else out + bias.double()


def _mlp(x: torch.Tensor, sd: dict, prefix: str) -> torch.Tensor:
    """ReLU after every hidden layer, then the linear ``predict`` if the MLP has one."""
    i = 0
    while f"{prefix}.layers.{i}.weight" in sd:
        x = torch.relu(_linear(x, sd, f"{prefix}.layers.{i}"))
        i += 1
    if f"{prefix}.predict.weight" in sd:
        x = _linear(x, sd, f"{prefix}.predict")
    return x


def _softmax_masked(scores: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(absent, -1e9), dim=-1)


def reference_forward(sd: dict, x: torch.Tensor, heads: int, self_attention_heads: int | None,
                      permute_self_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Q-values [B, A] and ego-attention pattern [B, H, 1, N] as rl-agents computes them.

    ``permute_self_attention`` swaps rl-agents' straight [B,H,N,D] -> [B,N,F] reshape for the "natural"
    permute-then-reshape: a deliberately wrong variant used as a negative control.
    """
    x = x.double()
    b, n, _ = x.shape
    absent = x[:, :, 0] < 0.5  # [B, N], the ego row included
    entities = torch.cat([_mlp(x[:, :1], sd, "ego_embedding"), _mlp(x[:, 1:], sd, "others_embedding")], dim=1)
    f = entities.shape[-1]
    if self_attention_heads is not None:
        hs, ds = self_attention_heads, f // self_attention_heads
        q = _linear(entities, sd, "self_attention_layer.query_all").reshape(b, n, hs, ds)
        k = _linear(entities, sd, "self_attention_layer.key_all").reshape(b, n, hs, ds)
        v = _linear(entities, sd, "self_attention_layer.value_all").reshape(b, n, hs, ds)
        scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(ds)
        pattern = _softmax_masked(scores, absent[:, None, None, :])
        value = torch.einsum("bhij,bjhd->bhid", pattern, v)  # [B, H, N, D]
        if permute_self_attention:
            value = value.permute(0, 2, 1, 3)
        mixed = value.reshape(b, n, f)  # rl-agents: reshape [B, H, N, D] straight to [B, N, F]
        entities = (_linear(mixed, sd, "self_attention_layer.attention_combine") + entities) / 2
    ego = entities[:, 0]  # [B, F]
    d = f // heads
    q = _linear(ego, sd, "attention_layer.query_ego").reshape(b, heads, d)
    k = _linear(entities, sd, "attention_layer.key_all").reshape(b, n, heads, d)
    v = _linear(entities, sd, "attention_layer.value_all").reshape(b, n, heads, d)
    scores = torch.einsum("bhd,bjhd->bhj", q, k) / math.sqrt(d)
    pattern = _softmax_masked(scores, absent[:, None, :])  # [B, H, N]
    z = torch.einsum("bhj,bjhd->bhd", pattern, v).reshape(b, f)  # heads concatenated
    residual = (_linear(z, sd, "attention_layer.attention_combine") + ego) / 2
    return _mlp(residual, sd, "output_layer"), pattern[:, :, None, :]


# ----------------------------------------------------------------------------------------------

CASES = [(h, sa) for h in HEAD_COUNTS for sa in (False, True)]


def _self_attention_heads(heads: int, self_attention: bool) -> int | None:
    return 8 // heads if self_attention else None  # a head count different from the ego-attention's


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> dict:
    """One rl-agents checkpoint per case, written with torch.save and loaded through the project."""
    agents = {}
    for heads, self_attention in CASES:
        sd = planted_state_dict(self_attention, seed=100 * heads + self_attention)
        path = tmp_path_factory.mktemp(f"run_h{heads}_sa{int(self_attention)}") / "saved_models" / "latest.tar"
        write_rl_agents_checkpoint(path, sd, self_attention)
        config = agent_config(heads, _self_attention_heads(heads, self_attention))
        agents[heads, self_attention] = (load_agent(path, agent_config=config, env_config=ENV_CONFIG), sd, path)
    return agents


@pytest.mark.parametrize("heads,self_attention", CASES)
def test_forward_matches_independent_rl_agents_forward(loaded, heads, self_attention):
    agent, sd, _ = loaded[heads, self_attention]
    x = observations(64, seed=heads)
    expected_q, expected_pattern = reference_forward(sd, x, heads, _self_attention_heads(heads, self_attention))
    with torch.no_grad():
        q = agent.model(x)
        pattern = agent.model.attention(x)
    assert agent.format == "rl-agents" and agent.n_heads == heads
    assert q.shape == (64, N_ACTIONS) and pattern.shape == (64, heads, 1, N_ENTITIES)
    torch.testing.assert_close(q.double(), expected_q, rtol=0, atol=1e-5)
    torch.testing.assert_close(pattern.double(), expected_pattern, rtol=0, atol=1e-5)
    np.testing.assert_allclose(agent.q_values(x.numpy()), expected_q.numpy(), rtol=0, atol=1e-5)
    # The planted weights give attention far from uniform (about 1/9 over the present rows), so the
    # pattern comparison has teeth.
    assert expected_pattern.amax(dim=-1).median() > 0.3
    # Absent rows get no attention at all.
    absent = (x[:, :, 0] < 0.5)[:, None, None, :].expand_as(pattern)
    assert pattern[absent].abs().max() < 1e-12


@pytest.mark.parametrize("heads", [1, 2, 4])  # self-attention heads 8, 4, 2 (with one head the two agree)
def test_independent_forward_distinguishes_self_attention_reshape(loaded, heads):
    """Negative control: permuting heads before the reshape (not what rl-agents does) is detected."""
    agent, sd, _ = loaded[heads, True]
    x = observations(16, seed=7)
    wrong_q, _ = reference_forward(sd, x, heads, _self_attention_heads(heads, True), permute_self_attention=True)
    with torch.no_grad():
        q = agent.model(x).double()
    assert (q - wrong_q).abs().max() > 1e-3


def _scramble_absent_rows(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    absent = y[:, :, 0] < 0.5
    y[..., 1:][absent] = torch.rand_like(y[..., 1:][absent]) * 10
    return y


def test_absent_rows_do_not_influence_the_output(loaded):
    """Without self-attention, changing the features of absent rows changes nothing (presence masking)."""
    agent, _, _ = loaded[4, False]
    x = observations(32, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(agent.model(x), agent.model(_scramble_absent_rows(x)), rtol=0, atol=1e-6)


def test_self_attention_reshape_lets_absent_rows_leak_as_in_rl_agents(loaded):
    """rl-agents' SelfAttention reshapes [B,H,N,D] straight to [B,N,F], so with more than one head a
    present row's output mixes in other rows' *query* results, absent rows included: their features
    then change the Q-values. The model reproduces this faithfully (known answer from the reference)."""
    agent, sd, _ = loaded[4, True]  # self-attention with 2 heads
    x = observations(32, seed=3)
    y = _scramble_absent_rows(x)
    expected_y, _ = reference_forward(sd, y, 4, _self_attention_heads(4, True))
    with torch.no_grad():
        qx, qy = agent.model(x), agent.model(y)
    torch.testing.assert_close(qy.double(), expected_y, rtol=0, atol=1e-5)
    assert (qx - qy).abs().max() > 1e-3


@pytest.mark.parametrize("self_attention", [False, True])
def test_parameter_names_shapes_and_order_match_rl_agents(loaded, self_attention):
    agent, _, _ = loaded[4, self_attention]
    found = [(name, tuple(p.shape)) for name, p in agent.model.named_parameters()]
    assert found == rl_agents_parameters(self_attention)
    assert list(agent.model.state_dict()) == [name for name, _ in rl_agents_parameters(self_attention)]


@pytest.mark.parametrize("self_attention", [False, True])
def test_rl_agents_optimizer_state_lines_up_with_our_parameters(loaded, self_attention):
    """Adam's state is indexed by parameter order: each of our parameters must receive its own moments."""
    agent, _, path = loaded[4, self_attention]
    saved = torch.load(path, weights_only=True)["optimizer"]
    optimizer = torch.optim.Adam(agent.model.parameters(), lr=5e-4)
    optimizer.load_state_dict(saved)
    table = [name for name, _ in rl_agents_parameters(self_attention)]
    for name, p in agent.model.named_parameters():
        exp_avg = optimizer.state[p]["exp_avg"]
        assert exp_avg.shape == p.shape, name
        torch.testing.assert_close(exp_avg, torch.full_like(p, 0.1 * (table.index(name) + 1)), msg=name)


def test_optimizer_built_from_our_parameters_indexes_them_in_table_order(loaded):
    """The other direction: an Adam state we save indexes parameters as rl-agents expects."""
    agent, _, _ = loaded[4, False]
    model = copy.deepcopy(agent.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    table = [name for name, _ in README_PARAMETERS]
    for name, p in model.named_parameters():
        p.grad = torch.full_like(p, float(table.index(name) + 1))
    optimizer.step()
    state = optimizer.state_dict()
    assert state["param_groups"][0]["params"] == list(range(len(table)))
    for i, (name, shape) in enumerate(README_PARAMETERS):
        exp_avg = state["state"][i]["exp_avg"]
        assert tuple(exp_avg.shape) == shape, name
        torch.testing.assert_close(exp_avg, torch.full(shape, 0.1 * (i + 1)), msg=name)


# ----------------------------------------------------------------------------------------------
# Hook points.

def documented_hooks(batch: int, heads: int, self_attention_heads: int | None) -> dict[str, tuple[int, ...]]:
    b, n, f, d, a = batch, N_ENTITIES, FEATURE_SIZE, FEATURE_SIZE // heads, N_ACTIONS
    shapes = {
        "hook_input": (b, n, N_FEATURES),
        "hook_mask": (b, n),
        "ego_embedding.hook_hidden.0": (b, 1, 64), "ego_embedding.hook_hidden.1": (b, 1, 64),
        "others_embedding.hook_hidden.0": (b, n - 1, 64), "others_embedding.hook_hidden.1": (b, n - 1, 64),
        "attention_layer.hook_q": (b, heads, 1, d),
        "attention_layer.hook_k": (b, heads, n, d),
        "attention_layer.hook_v": (b, heads, n, d),
        "attention_layer.hook_scores": (b, heads, 1, n),
        "attention_layer.hook_pattern": (b, heads, 1, n),
        "attention_layer.hook_z": (b, heads, d),
        "attention_layer.hook_head_out": (b, heads, f),
        "attention_layer.hook_combined": (b, f),
        "attention_layer.hook_ego": (b, f),
        "hook_residual": (b, f),
        "output_layer.hook_hidden.0": (b, 64), "output_layer.hook_hidden.1": (b, 64),
        "hook_q": (b, a),
    }
    if self_attention_heads is not None:
        shapes |= {
            "self_attention_layer.hook_scores": (b, self_attention_heads, n, n),
            "self_attention_layer.hook_pattern": (b, self_attention_heads, n, n),
            "self_attention_layer.hook_out": (b, n, f),
        }
    return shapes


def _no_hooks_left(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("heads,self_attention", [(4, False), (2, True)])
def test_run_with_cache_returns_every_documented_hook_with_its_shape(loaded, heads, self_attention):
    agent, sd, _ = loaded[heads, self_attention]
    x = observations(5, seed=11)
    with torch.no_grad():
        q, cache = agent.model.run_with_cache(x)
    expected = documented_hooks(5, heads, _self_attention_heads(heads, self_attention))
    assert {name: tuple(t.shape) for name, t in cache.items()} == expected
    assert cache["hook_mask"].dtype == torch.bool
    assert torch.equal(cache["hook_mask"], x[:, :, 0] < 0.5)
    assert torch.equal(cache["hook_q"], q)
    ref_q, ref_pattern = reference_forward(sd, x, heads, _self_attention_heads(heads, self_attention))
    torch.testing.assert_close(cache["attention_layer.hook_pattern"].double(), ref_pattern, rtol=0, atol=1e-5)
    # The documented relations between the cached activations.
    head_out = cache["attention_layer.hook_head_out"]
    torch.testing.assert_close(head_out.sum(dim=1), cache["attention_layer.hook_combined"], rtol=0, atol=1e-5)
    torch.testing.assert_close(
        (cache["attention_layer.hook_combined"] + cache["attention_layer.hook_ego"]) / 2, cache["hook_residual"])
    w = sd["attention_layer.attention_combine.weight"].reshape(FEATURE_SIZE, heads, FEATURE_SIZE // heads)
    torch.testing.assert_close(head_out, torch.einsum("bhd,fhd->bhf", cache["attention_layer.hook_z"], w))
    assert _no_hooks_left(agent.model)


def test_run_with_cache_output_is_bit_identical_to_plain_forward(loaded):
    agent, _, _ = loaded[4, False]
    x = observations(32, seed=12)
    with torch.no_grad():
        assert torch.equal(agent.model.run_with_cache(x)[0], agent.model(x))


def test_hooks_are_removed_even_when_the_forward_raises(loaded):
    agent, _, _ = loaded[4, True]
    model = agent.model
    x = observations(4, seed=13)
    with torch.no_grad():
        before = model(x)

    def boom(act, hook):
        raise RuntimeError("boom")

    def zero(act, hook):
        return torch.zeros_like(act)

    with pytest.raises(RuntimeError, match="boom"):
        model.run_with_hooks(x, [("hook_residual", zero), ("attention_layer.hook_pattern", boom)])
    assert _no_hooks_left(model)
    with pytest.raises(RuntimeError, match="boom"):
        model.run_with_cache(x, fwd_hooks=[("output_layer.hook_hidden.*", boom)])
    assert _no_hooks_left(model)
    with pytest.raises(ValueError, match="body"):
        with model.hooks([("*", zero)]):
            raise ValueError("body raised")
    assert _no_hooks_left(model)
    with pytest.raises(KeyError, match="no hook point"):  # a later unknown name: earlier hooks still removed
        model.run_with_hooks(x, [("hook_residual", zero), ("attention_layer.hook_nope", zero)])
    assert _no_hooks_left(model)
    with torch.no_grad():
        assert torch.equal(model(x), before)


def _zero_head(index: int, dim: int = 1):
    def hook(act, hook):
        out = act.clone()
        out.select(dim, index).zero_()
        return out
    return hook


def _zero_head_in_place(index: int):
    def hook(act, hook):  # TransformerLens' idiom: edit in place, return the same tensor
        act[:, index] = 0
        return act
    return hook


@pytest.mark.parametrize("head", range(4))
def test_zeroing_a_head_in_z_equals_zeroing_its_head_out(loaded, head):
    agent, sd, _ = loaded[4, False]
    model = agent.model
    x = observations(32, seed=14)
    with torch.no_grad():
        plain = model(x)
        via_z = model.run_with_hooks(x, [("attention_layer.hook_z", _zero_head(head))])
        via_head_out = model.run_with_hooks(x, [("attention_layer.hook_head_out", _zero_head(head))])
        in_place = model.run_with_hooks(x, [("attention_layer.hook_head_out", _zero_head_in_place(head))])
    torch.testing.assert_close(via_z, via_head_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(in_place, via_head_out, rtol=0, atol=1e-5)
    assert (via_z - plain).abs().max() > 1e-4  # the ablation did something
    # Known answer: rl-agents' forward with that head's slice of z zeroed.
    d = FEATURE_SIZE // 4
    w = sd["attention_layer.attention_combine.weight"].clone()
    w[:, head * d:(head + 1) * d] = 0
    expected, _ = reference_forward({**sd, "attention_layer.attention_combine.weight": w}, x, 4, None)
    torch.testing.assert_close(via_z.double(), expected, rtol=0, atol=1e-5)


def test_editing_head_out_recombines(loaded):
    agent, _, _ = loaded[4, False]
    model = agent.model
    x = observations(16, seed=15)
    scale = torch.tensor([2.0, -1.0, 0.5, 3.0])[None, :, None]
    with torch.no_grad():
        _, clean = model.run_with_cache(x)
        edited_q, edited = model.run_with_cache(
            x, fwd_hooks=[("attention_layer.hook_head_out", lambda act, hook: act * scale)])
        expected_combined = (clean["attention_layer.hook_head_out"] * scale).sum(dim=1)
        torch.testing.assert_close(edited["attention_layer.hook_combined"], expected_combined)
        torch.testing.assert_close(edited["hook_residual"], (expected_combined + clean["attention_layer.hook_ego"]) / 2)
        expected_q = model.output_layer(edited["hook_residual"])
    torch.testing.assert_close(edited_q, expected_q)
    assert (edited_q - clean["hook_q"]).abs().max() > 1e-4
    # A hook that returns an equal copy leaves the output as rl-agents computes it.
    with torch.no_grad():
        copied = model.run_with_hooks(x, [("attention_layer.hook_head_out", lambda act, hook: act.clone())])
    assert torch.equal(copied, clean["hook_q"])
