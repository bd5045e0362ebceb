"""A planted ego-attention network: weights set by hand so the right answer of every probe is known.

Same architecture and checkpoint format as the agent under test (an rl-agents ``EgoAttentionNetwork``
over 15 rows x 7 features [presence, x, y, vx, vy, cos_h, sin_h], 3 actions [SLOWER, IDLE, FASTER]),
only smaller: embeddings ``[16, F]``, output MLP ``[F, F]``, ``F = feature_size`` (default 8), H heads of
``D = F / H`` dims. All weights and biases not named below are exactly zero.

Construction (embedding dims; ``c`` and ``s`` are per-row scalars):

* others' embedding: layer 0 computes relu(+-x), relu(+-y), relu(presence), relu(+-vx), relu(+-vy);
  layer 1 gives
    - dim ``CLOSENESS_DIM`` = 0:  ``c = relu(2*presence - |x| - |y|) = 2 - |x| - |y|`` for a present row
      (L1 closeness to the origin of the observation frame, in [0, 2] for x, y in [-1, 1]; with
      relative coordinates the origin is the ego; with the reference env's absolute coordinates it is the
      intersection centre),
    - dim ``SPEED_DIM`` = 1:      ``s = |vx| + |vy|``,
    - dim ``PRESENT_DIM`` = 2:    ``presence``.
* ego embedding: dim 0 is 0 (the ego has no closeness), dim ``SPEED_DIM`` its own ``|vx| + |vy|``,
  dim ``EGO_CONST_DIM`` = 3 the constant 1.
* head 0 (``PLANTED_HEAD``): query dim 0 = ``SHARPNESS * sqrt(D)`` x ego dim 3 (= const), key dim 0 = embedding
  dim 0. So its score is ``SHARPNESS * c_j`` for another vehicle j and 0 for the ego row: it depends only
  on the planted feature, closeness; its argmax over present rows is the vehicle with the smallest
  ``|x| + |y|``. Value dim 0 = ``c``, so ``z_0[0] = sum_j pattern_0j * c_j`` (~ the largest closeness).
* head 1 (``SILENT_HEAD``) and any further head: zero query and key, so uniform attention over present
  rows; value dim 0 = speed, so its ``z`` is non-zero and varies by scene, but its slice of
  ``attention_combine`` is zero: it writes nothing.
* ``attention_combine``: residual dim 0 = head 0's ``z[0]``; nothing else. Residual ``r = (combined + ego)/2``:
  ``r0 = z_0[0] / 2``, ``r1 = ego speed / 2``, ``r3 = 1/2``.
* output layer 0: neuron ``PLANTED_NEURON`` = 0 is ``relu(2 r0) = z_0[0]`` (reads only residual dim 0,
  which only head 0 writes); neuron 1 = ego speed; neuron 2 = 1. Layer 1 passes them through unchanged.
* predict: ``Q_SLOWER = 0.2 - 0.1 * ego_speed``, ``Q_IDLE = 0.5 + 0.1 * ego_speed``,
  ``Q_FASTER = 2.0 + 0.1 * ego_speed - SUPPRESSION * z_0[0]``.
  So FASTER (``SUPPRESSED_ACTION`` = 2) is lowered by exactly ``SUPPRESSION * z_0[0]`` by head 0, linearly
  (every ReLU on the path works in its linear region), and SLOWER / IDLE do not depend on head 0.
  The greedy action is FASTER when ``z_0[0] < 1.5`` (no vehicle within ~50 m, L1) and IDLE otherwise.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from interp.simulation.agent import Agent
from interp.model.checkpoint import weights_identity
from interp.model.config import resolve_model_config
from interp.model.network import EgoAttentionNetwork

ROOT = Path(__file__).resolve().parent.parent
ENV_CONFIG_PATH = ROOT / "checkpoints" / "reference" / "env_config.json"

N_ROWS, N_FEATURES = 15, 7
ACTION_NAMES = ["SLOWER", "IDLE", "FASTER"]
FEATURES = ["presence", "x", "y", "vx", "vy", "cos_h", "sin_h"]
PRESENCE, X, Y, VX, VY, COS_H, SIN_H = range(7)
EMBED_HIDDEN = 16

# --- the known answers ---------------------------------------------------------------------------
PLANTED_HEAD = 0
SILENT_HEAD = 1
PLANTED_FEATURE = "closeness"           # 2 - |x| - |y| of another vehicle's row
PLANTED_FEATURE_COLUMNS = (X, Y)         # the observation columns it is computed from
CLOSENESS_DIM = 0                        # embedding dim carrying closeness (others only)
SPEED_DIM = 1                            # embedding dim carrying |vx| + |vy| (ego and others)
PRESENT_DIM = 2                          # embedding dim carrying presence (others only)
EGO_CONST_DIM = 3                        # ego embedding dim that is constantly 1 (drives head 0's query)
PLANTED_NEURON = 0                       # output_layer.hook_hidden.0 (and .1) neuron reading only head 0
PLANTED_NEURON_HOOK = "output_layer.hook_hidden.0"
SUPPRESSED_ACTION = 2                    # FASTER
UNAFFECTED_ACTIONS = (0, 1)              # SLOWER, IDLE
SHARPNESS = 20.0                         # head 0's score = SHARPNESS * closeness
SUPPRESSION = 1.0                        # Q_FASTER drops by SUPPRESSION * z_0[0]
Q_BIAS = (0.2, 0.5, 2.0)                 # SLOWER, IDLE, FASTER
SPEED_GAIN = (-0.1, 0.1, 0.1)            # d Q / d ego speed
CAUTION = 0.5                            # the cautious variant: Q_SLOWER gains CAUTION * z_0 (cautious_agent)


def planted_agent_config(n_heads: int = 2, feature_size: int = 8) -> dict:
    """An rl-agents DQN agent config (reference hyper-parameters) whose model is the planted architecture."""
    config = json.loads((ROOT / "checkpoints" / "reference" / "agent_config.json").read_text())
    mlp = {"type": "MultiLayerPerceptron", "reshape": False, "in": N_FEATURES}
    config["model"] = {
        "type": "EgoAttentionNetwork",
        "embedding_layer": {**mlp, "layers": [EMBED_HIDDEN, feature_size]},
        "others_embedding_layer": {**mlp, "layers": [EMBED_HIDDEN, feature_size]},
        "self_attention_layer": None,
        "attention_layer": {"type": "EgoAttention", "feature_size": feature_size, "heads": n_heads},
        "output_layer": {"type": "MultiLayerPerceptron", "layers": [feature_size, feature_size], "reshape": False},
    }
    return config


def _embedding_first_layer(layer: nn.Linear) -> None:
    """Hidden units 0..8: relu(x), relu(-x), relu(y), relu(-y), relu(presence), relu(+-vx), relu(+-vy)."""
    w = layer.weight
    for unit, (col, sign) in enumerate([(X, 1), (X, -1), (Y, 1), (Y, -1), (PRESENCE, 1),
                                        (VX, 1), (VX, -1), (VY, 1), (VY, -1)]):
        w[unit, col] = sign


def _set_weights(model: EgoAttentionNetwork) -> None:
    fs, heads = model.attention_layer.feature_size, model.n_heads
    d = fs // heads
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        speed_units = [5, 6, 7, 8]
        # others: closeness, speed, presence
        _embedding_first_layer(model.others_embedding.layers[0])
        w = model.others_embedding.layers[1].weight
        w[CLOSENESS_DIM, 4], w[CLOSENESS_DIM, 0:4] = 2.0, -1.0
        w[SPEED_DIM, speed_units] = 1.0
        w[PRESENT_DIM, 4] = 1.0
        # ego: speed, constant
        _embedding_first_layer(model.ego_embedding.layers[0])
        w = model.ego_embedding.layers[1].weight
        w[SPEED_DIM, speed_units] = 1.0
        w[EGO_CONST_DIM, 4] = 1.0
        # attention: head h owns output features h*d .. (h+1)*d - 1 of query/key/value
        att = model.attention_layer
        h0 = PLANTED_HEAD * d
        att.query_ego.weight[h0, EGO_CONST_DIM] = SHARPNESS * float(np.sqrt(d))  # score = q.k / sqrt(d)
        att.key_all.weight[h0, CLOSENESS_DIM] = 1.0
        att.value_all.weight[h0, CLOSENESS_DIM] = 1.0
        for h in range(heads):
            if h != PLANTED_HEAD:
                att.value_all.weight[h * d, SPEED_DIM] = 1.0  # silent heads read speed but write nothing
        att.attention_combine.weight[0, h0] = 1.0
        # output MLP: neuron 0 = relu(2 r0) = z_0[0]; 1 = ego speed; 2 = 1
        out = model.output_layer
        out.layers[0].weight[PLANTED_NEURON, 0] = 2.0
        out.layers[0].weight[1, SPEED_DIM] = 2.0
        out.layers[0].weight[2, EGO_CONST_DIM] = 2.0
        for i in range(3):
            out.layers[1].weight[i, i] = 1.0
        pred = out.predict
        for a in range(3):
            pred.weight[a, 2] = Q_BIAS[a]
            pred.weight[a, 1] = SPEED_GAIN[a]
        pred.weight[SUPPRESSED_ACTION, PLANTED_NEURON] = -SUPPRESSION


def planted_model(n_heads: int = 2, feature_size: int = 8) -> EgoAttentionNetwork:
    """The planted network (see the module docstring), in eval mode."""
    if n_heads < 2 or feature_size % n_heads or feature_size < 4:
        raise ValueError("the planted model needs >= 2 heads dividing feature_size >= 4")
    config = resolve_model_config(planted_agent_config(n_heads, feature_size)["model"], N_ROWS, N_FEATURES,
                                  len(ACTION_NAMES))
    model = EgoAttentionNetwork(config)
    _set_weights(model)
    return model.eval()


def _agent(model: EgoAttentionNetwork, source: str, n_heads: int, feature_size: int) -> Agent:
    return Agent(model=model, agent_config=planted_agent_config(n_heads, feature_size),
                 env_config=json.loads(ENV_CONFIG_PATH.read_text()), action_names=list(ACTION_NAMES),
                 identity=weights_identity(model.state_dict(), model.config), source=source, format="planted")


def planted_agent(n_heads: int = 2, feature_size: int = 8) -> Agent:
    """The planted model as an ``interp.simulation.agent.Agent`` on the reference env config."""
    return _agent(planted_model(n_heads, feature_size), "planted", n_heads, feature_size)


def cautious_agent() -> Agent:
    """The planted agent with Q_SLOWER = 0.2 - 0.1 v + CAUTION * z_0: it slows when z_0 > ~1.26, i.e. whenever a
    vehicle is within ~74 m (L1) of the centre, and keeps its speed on an empty road. So it satisfies "slow down
    when a crossing vehicle reaches the conflict point first" everywhere, and a planted weakness
    (``specs.fuzzing.planted``) is the only way it fails that property."""
    from specs.fuzzing.planted import with_weight

    return with_weight(planted_agent(), "output_layer.predict.weight", (0, PLANTED_NEURON), CAUTION, "cautious")


# --- controls ------------------------------------------------------------------------------------
def _no_mask(_module: nn.Module, _inputs, mask: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(mask)


def broken_presence_model(model: EgoAttentionNetwork) -> EgoAttentionNetwork:
    """A copy whose presence mask is disabled (every row counts as present): a negative control for the
    masking invariances, which hold for any weights of the real architecture. Its config carries
    ``"broken": "presence_mask"`` so its weights identity differs from the original's."""
    broken = copy.deepcopy(model)
    broken.hook_mask.register_forward_hook(_no_mask)  # permanent on the copy, unlike run_with_hooks
    broken.config = {**broken.config, "broken": "presence_mask"}
    return broken


class _RowOffset:
    """Adds ``scale * row index`` to every feature of each row: makes the network depend on row order."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __call__(self, _module: nn.Module, _inputs, x: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(x.shape[1], dtype=x.dtype).view(1, -1, 1)
        return x + self.scale * rows * (x[:, :, PRESENCE:PRESENCE + 1] >= 0.5)


def row_order_dependent_model(model: EgoAttentionNetwork, scale: float = 0.01) -> EgoAttentionNetwork:
    """A copy that sees each present row shifted by ``scale * row index``: a negative control for row-
    permutation invariance (which holds for any weights of the real architecture)."""
    broken = copy.deepcopy(model)
    broken.hook_input.register_forward_hook(_RowOffset(scale))
    broken.config = {**broken.config, "broken": f"row_order({scale})"}
    return broken


def randomised_copy(model: EgoAttentionNetwork, seed: int = 0) -> EgoAttentionNetwork:
    """A copy with every Linear re-initialised by PyTorch's default init under ``seed`` (model randomisation)."""
    randomised = copy.deepcopy(model)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for module in randomised.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
    return randomised.eval()


# --- synthetic observations ----------------------------------------------------------------------
def random_observations(batch: int, seed: int = 0, *, min_present: int = 2, max_present: int = N_ROWS,
                        shuffle_rows: bool = True) -> np.ndarray:
    """[batch, 15, 7] float32 observations in the env's normalised ranges: x, y, vx, vy uniform in [-1, 1],
    (cos_h, sin_h) on the unit circle, the ego (row 0) present, ``k`` in [min_present, max_present] rows
    present in total (absent rows all zero, as the env writes them), present rows placed at random rows."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((batch, N_ROWS, N_FEATURES), dtype=np.float32)
    for b in range(batch):
        k = int(rng.integers(min_present, max_present + 1))
        others = rng.permutation(np.arange(1, N_ROWS))[: k - 1] if shuffle_rows else np.arange(1, k)
        rows = np.concatenate([[0], others]).astype(int)
        heading = rng.uniform(-np.pi, np.pi, size=len(rows))
        obs[b, rows, PRESENCE] = 1.0
        obs[b, rows, X:VY + 1] = rng.uniform(-1.0, 1.0, size=(len(rows), 4))
        obs[b, rows, COS_H] = np.cos(heading)
        obs[b, rows, SIN_H] = np.sin(heading)
    return obs


def closeness(obs: np.ndarray) -> np.ndarray:
    """The planted feature per row, [B, 15]: 2 - |x| - |y| for present non-ego rows, 0 elsewhere."""
    obs = np.asarray(obs)
    value = 2.0 - np.abs(obs[..., X]) - np.abs(obs[..., Y])
    value = np.where(obs[..., PRESENCE] >= 0.5, value, 0.0)
    value[..., 0] = 0.0
    return value


def closest_row(obs: np.ndarray) -> np.ndarray:
    """[B] the row head 0 attends to most: the present non-ego row with the largest closeness."""
    obs = np.asarray(obs)
    value = np.where(obs[..., PRESENCE] >= 0.5, closeness(obs), -np.inf)
    value[..., 0] = -np.inf
    return value.argmax(axis=-1)


def expected_q(obs: np.ndarray) -> np.ndarray:
    """[B, 3] the planted Q-values computed from the construction in numpy (float64)."""
    obs = np.asarray(obs, dtype=np.float64)
    c = closeness(obs)
    scores = np.where(obs[..., PRESENCE] >= 0.5, SHARPNESS * c, -np.inf)
    scores[..., 0] = 0.0
    pattern = np.exp(scores - scores.max(-1, keepdims=True))
    pattern /= pattern.sum(-1, keepdims=True)
    z0 = (pattern * c).sum(-1)
    ego_speed = np.abs(obs[:, 0, VX]) + np.abs(obs[:, 0, VY])
    q = np.asarray(Q_BIAS)[None] + np.asarray(SPEED_GAIN)[None] * ego_speed[:, None]
    q[:, SUPPRESSED_ACTION] -= SUPPRESSION * z0
    return q
