"""The greedy policy: how an observation becomes an action, the same way everywhere.

Every place that turns Q-values into an action or judges one (the rollout engine, ``python -m interp
evaluate``, the trainer's greedy step, ``Agent.act``, fuzz branches, replays, the specs' action claims,
``greedy_flips``, the logit lens) calls this module, so one rule decides (``tests/test_action_rule.py``).

**A deviation from rl-agents**, which acts by ``np.argmax`` (the first maximum): here a rival within
``TIE_TOL`` of the best is a tie, and the tie goes to the lowest index. On the bundled reference agents
the two rules differ on 1 step of 2051 (reference) and 1 of 2106 (reference-2h), seeds 0-199
(``python -m benchmarks.tie_rule``; docs/how-it-works/action-rule.md).

**One row at a time.** Each observation is run through the network alone (batch of one). With several rows
in a batch, CPU kernels may block or vectorise the rows differently, and a row's Q-values then differ in the
last bits with its neighbours, its position and the batch size. A batch of one has one code path on a given
machine, so an episode's actions cannot depend on the worker count, the slot layout, the backend or which
other episodes were cached. The network costs tens of microseconds per row, the simulator milliseconds per
step (``benchmarks/test_policy.py`` measures both), so the price is small.

**Near-ties, across machines.** Float32 kernels (and numpy's SIMD paths in the simulator) are not bit-equal
across CPUs, so no rule makes every decision machine-independent: any map from real Q-values to a discrete
action has boundaries. What the design guarantees instead:

- ``TIE_TOL`` (1e-4, absolute, in Q units): actions within it of the best are *tied*, and the tie goes to the
  lowest action index (the most cautious: SLOWER before IDLE before FASTER). A tie therefore resolves the
  same way on every machine instead of by rounding.
- A step is a *near-tie* when some other action lies within ``NEAR_TIE_TOL`` = 2 x ``TIE_TOL`` of the best.
  The decision can only change where a rival's gap to the best crosses ``TIE_TOL``; a Q-value perturbation
  of at most ``TIE_TOL / 2`` per action moves a gap by at most ``TIE_TOL``, so **a step that is not a
  near-tie is decided identically on any machine whose Q-values agree within 5e-5**. Near-tie steps are
  counted per episode (``EpisodeRecord.near_ties``) and shown per verdict, so a reader knows which
  verdicts rest on decisions another CPU might take differently.

Why 1e-4: Q-values of the bundled agents are O(1-10). Measured here on 2000 random observations (Q up to
19): the same batch-of-one forward under another kernel set (``ATEN_CPU_CAPABILITY=avx2`` or ``default``
against AVX-512) differs by at most 3.1e-6, and even a different algorithm (a batch of 2000 against batches
of one) by at most 5.5e-5. So the 5e-5 guarantee covers other CPUs' kernels with a margin of more than 15x
(``tests/test_policy.py`` re-measures it on the machine it runs on); and gaps this small are rare in real
episodes (they are counted, so a reader sees how rare).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from interp.model import draws

TIE_TOL = 1e-4  # actions within this of the best Q are tied; the lowest index wins
NEAR_TIE_TOL = 2 * TIE_TOL  # a rival within this of the best: a step another CPU might decide differently
RULE = f"rows1-tie{TIE_TOL:g}-lowest"  # names this rule in cache keys: change it and cached records are stale


@dataclasses.dataclass(frozen=True)
class Decisions:
    """Greedy decisions for a batch of rows: ``actions`` [B], ``near_tie`` [B] bool, ``q`` [B, A] float32."""

    actions: np.ndarray
    near_tie: np.ndarray
    q: np.ndarray


def choose(q: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Actions [...] and near-tie flags [...] from Q-values [..., A], by the rule in the module docstring."""
    q = np.asarray(q.detach().cpu().numpy() if isinstance(q, torch.Tensor) else q, dtype=np.float64)
    gap = q.max(axis=-1, keepdims=True) - q  # >= 0, 0 for the best; exact for float32 inputs in float64
    tied = gap <= TIE_TOL
    actions = tied.argmax(axis=-1)  # the first (lowest-index) tied action
    near_tie = (gap <= NEAR_TIE_TOL).sum(axis=-1) > 1
    return actions.astype(np.int64), near_tie


def q_rows(model, obs: np.ndarray | torch.Tensor, hooks: Sequence = (), cache: str | None = None,
           keys: Sequence[draws.DrawKey] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Q-values [B, A] computed one row at a time (batch of one each), under ``hooks``.

    With ``cache`` (a hook name), also that hook's activation per row, stacked [B, ...]. ``keys`` name each
    row for random interventions (``interp.model.draws``; the rollout engine passes episode seed, step and
    condition); without them row ``i`` is ``DrawKey(row=i)``, as in a batched forward of the same rows.
    """
    x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    if x.ndim == 2:
        x = x[None]
    if keys is not None and len(keys) != x.shape[0]:
        raise ValueError(f"{len(keys)} draw keys for {x.shape[0]} observations: give one key per row")
    qs, acts = [], []
    saved: list[torch.Tensor] = []
    extra = [(cache, lambda act, _hook: saved.append(act.detach().clone()))] if cache is not None else []
    with torch.no_grad(), model.hooks([*hooks, *extra]):  # installed once, removed on exit
        for i in range(x.shape[0]):
            with draws.keyed([keys[i] if keys is not None else draws.DrawKey(row=i)]):
                qs.append(model(x[i:i + 1])[0].numpy())
            if cache is not None:
                acts.append(saved.pop()[0].numpy())
    q_all = np.stack(qs).astype(np.float32) if qs else np.zeros((0, model.config["out"]), np.float32)
    return q_all, (np.stack(acts) if cache is not None and acts else None)


def decide(model, obs: np.ndarray | torch.Tensor, hooks: Sequence = ()) -> Decisions:
    """Greedy decisions for observations [B, N, F] (or one [N, F]): ``q_rows`` then ``choose``."""
    q, _ = q_rows(model, obs, hooks)
    actions, near_tie = choose(q)
    return Decisions(actions=actions, near_tie=near_tie, q=q)
