"""The ego-attention Q-network of rl-agents (Leurent & Mercat 2019), with TransformerLens-style hook points.

Parameter names and registration order are those of rl-agents' ``EgoAttentionNetwork``: Adam's state
in an rl-agents checkpoint is indexed by parameter order, so the order is part of the file format.
The forward pass reproduces rl-agents' arithmetic step by step (including the head-major reshape of
``SelfAttention``'s output, which mixes heads and entities exactly as rl-agents does).

Shapes: B batch, N entities (ego row 0 + others), F feature_size, H heads, D = F/H, A actions.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from interp.errors import ConfigError
from interp.model.hooks import HookedModule, HookPoint

ACTIVATIONS = {"RELU": F.relu, "TANH": torch.tanh}


def _activation(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; rl-agents supports {sorted(ACTIVATIONS)}") from None


class MultiLayerPerceptron(nn.Module):
    """rl-agents' MLP: the activation after *every* layer in ``layers``, then an optional linear ``predict``."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        sizes = [config["in"], *config["layers"]]
        self.activation = _activation(config["activation"])
        self.layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        if config.get("out"):
            self.predict = nn.Linear(sizes[-1], config["out"])
        # hook_hidden.i: output of layer i after its activation, [..., layers[i]]
        self.hook_hidden = nn.ModuleList(HookPoint(f"[..., {size}]") for size in config["layers"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config["reshape"]:  # rl-agents' default is the *string* "True": truthy
            x = x.reshape(x.shape[0], -1)
        for layer, hook in zip(self.layers, self.hook_hidden):
            x = hook(self.activation(layer(x)))
        if self.config.get("out"):
            x = self.predict(x)
        return x


def _scaled_dot_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                          hook_scores: HookPoint, hook_pattern: HookPoint) -> torch.Tensor:
    """softmax(QKᵀ/√D) V with masked keys filled with -1e9, as rl-agents' ``attention``."""
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask, -1e9)
    pattern = hook_pattern(F.softmax(hook_scores(scores), dim=-1))
    return torch.matmul(pattern, v)


def _init_projections(layer: nn.Module, config: dict, name: str, query: str) -> None:
    """The head geometry and the four projections both attention layers share, registered in rl-agents' order
    (value_all, key_all, the query, attention_combine: the order is part of the checkpoint format)."""
    layer.config = config
    layer.feature_size = fs = config["feature_size"]
    layer.heads = config["heads"]
    if fs % layer.heads:
        raise ConfigError(f"{name}: heads={layer.heads} does not divide feature_size={fs}; "
                          "choose a head count that divides the feature size")
    layer.features_per_head = fs // layer.heads
    for projection in ("value_all", "key_all", query, "attention_combine"):
        setattr(layer, projection, nn.Linear(fs, fs, bias=False))


class EgoAttention(nn.Module):
    """One ego-attention layer: the ego row queries all rows; heads combined, then averaged with the ego."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        _init_projections(self, config, "attention_layer", "query_ego")
        self.hook_q = HookPoint("[B, H, 1, D]")
        self.hook_k = HookPoint("[B, H, N, D]")
        self.hook_v = HookPoint("[B, H, N, D]")
        self.hook_scores = HookPoint("[B, H, 1, N] scaled, masked entries -1e9")
        self.hook_pattern = HookPoint("[B, H, 1, N]")
        self.hook_z = HookPoint("[B, H, D] per-head output before attention_combine")
        self.hook_head_out = HookPoint("[B, H, F] each head's contribution after attention_combine")
        self.hook_combined = HookPoint("[B, F] attention_combine(z) = sum of head_out")
        self.hook_ego = HookPoint("[B, F] the ego embedding entering the residual")

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, F] -> [B, H, N, D], head-major as rl-agents' view/permute."""
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.features_per_head).permute(0, 2, 1, 3)

    def forward(self, ego: torch.Tensor, others: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n = others.shape[0], others.shape[1] + 1
        input_all = torch.cat((ego.view(b, 1, self.feature_size), others), dim=1)
        k = self.hook_k(self.split_heads(self.key_all(input_all)))
        v = self.hook_v(self.split_heads(self.value_all(input_all)))
        q = self.hook_q(self.split_heads(self.query_ego(ego.view(b, 1, self.feature_size))))
        if mask is not None:
            mask = mask.view(b, 1, 1, n).expand(b, self.heads, 1, n)
        z = self.hook_z(_scaled_dot_attention(q, k, v, mask, self.hook_scores, self.hook_pattern).squeeze(2))
        weight = self.attention_combine.weight.view(self.feature_size, self.heads, self.features_per_head)
        head_out = torch.einsum("bhd,fhd->bhf", z, weight)
        # A hook may edit head_out in place and return it (TransformerLens' idiom): compare values, not identity.
        before = head_out.detach().clone() if self.hook_head_out._forward_hooks else None
        hooked_head_out = self.hook_head_out(head_out)
        if before is None or torch.equal(hooked_head_out, before):  # untouched: rl-agents' own matmul, bit-exact
            combined = self.attention_combine(z.reshape(b, self.feature_size))
        else:  # a hook edited a head's contribution: recombine from the edited parts
            combined = hooked_head_out.sum(dim=1)
        combined = self.hook_combined(combined)
        return (combined + self.hook_ego(ego.reshape(b, self.feature_size))) / 2


class SelfAttention(nn.Module):
    """rl-agents' optional self-attention over all entities before the ego-attention layer."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        _init_projections(self, config, "self_attention_layer", "query_all")
        self.hook_scores = HookPoint("[B, H, N, N]")
        self.hook_pattern = HookPoint("[B, H, N, N]")
        self.hook_out = HookPoint("[B, N, F]")

    def forward(self, ego: torch.Tensor, others: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n = others.shape[0], others.shape[1] + 1
        input_all = torch.cat((ego.view(b, 1, self.feature_size), others), dim=1)

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, n, self.heads, self.features_per_head).permute(0, 2, 1, 3)

        k, v, q = split(self.key_all(input_all)), split(self.value_all(input_all)), split(self.query_all(input_all))
        if mask is not None:
            mask = mask.view(b, 1, 1, n).expand(b, self.heads, 1, n)
        value = _scaled_dot_attention(q, k, v, mask, self.hook_scores, self.hook_pattern)
        # rl-agents reshapes [B, H, N, D] straight to [B, N, F] (no permute); reproduced on purpose.
        return self.hook_out((self.attention_combine(value.reshape(b, n, self.feature_size)) + input_all) / 2)


class EgoAttentionNetwork(HookedModule):
    """Q-network: embeddings -> (self-attention) -> ego-attention -> output MLP -> Q-values.

    ``config`` is a *resolved* model config (see ``interp.model.config.resolve_model_config``).
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        self.presence_idx = config["presence_feature_idx"]
        self.hook_input = HookPoint("[B, N, features] the observation")
        self.hook_mask = HookPoint("[B, N] bool, True where the row is absent (presence < 0.5)")
        # Registration order = rl-agents' parameter order (part of the checkpoint format).
        self.ego_embedding = MultiLayerPerceptron(config["embedding_layer"])
        self.others_embedding = MultiLayerPerceptron(config["others_embedding_layer"])
        self.self_attention_layer = SelfAttention(config["self_attention_layer"]) if config["self_attention_layer"] else None
        self.attention_layer = EgoAttention(config["attention_layer"])
        self.output_layer = MultiLayerPerceptron(config["output_layer"])
        self.hook_residual = HookPoint("[B, F] (attention_combine(z) + ego) / 2")
        self.hook_q = HookPoint("[B, A] Q-values")
        self.setup_hooks()

    @property
    def n_heads(self) -> int:
        return self.attention_layer.heads

    @property
    def n_actions(self) -> int:
        return self.config["out"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_input(x)
        mask = self.hook_mask(x[:, :, self.presence_idx] < 0.5)
        ego, others = self.ego_embedding(x[:, 0:1, :]), self.others_embedding(x[:, 1:, :])
        if self.self_attention_layer is not None:
            mixed = self.self_attention_layer(ego, others, mask)
            ego, others = mixed[:, 0:1, :], mixed[:, 1:, :]
        residual = self.hook_residual(self.attention_layer(ego, others, mask))
        return self.hook_q(self.output_layer(residual))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The ego-attention pattern [B, H, 1, N] for a batch of observations."""
        _, cache = self.run_with_cache(x, "attention_layer.hook_pattern")
        return cache["attention_layer.hook_pattern"]
