"""Known-answer tests of the trainer's two pure pieces, ``bellman_loss`` and ``ReplayMemory``.

The nets are planted lookup tables (state i -> a fixed row of Q-values), so every expected loss is computed by hand
from rl-agents' definition, independently of the code under test."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.training.train import ReplayMemory, bellman_loss

# Q tables indexed by state id; row 2 has its value-net argmax (action 0) away from the target's max (action 2)
VALUE = [[1.0, 2.0, 3.0], [0.5, -1.0, 0.0], [4.0, 1.0, 0.0]]
TARGET = [[0.0, 1.0, 2.0], [3.0, 0.0, 1.0], [-2.0, 0.5, 10.0]]


class Table(torch.nn.Module):
    """A planted Q-network: the state's first entry is a row index into a learnable table."""

    def __init__(self, rows: list[list[float]]) -> None:
        super().__init__()
        self.q = torch.nn.Parameter(torch.tensor(rows))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.q[state[:, 0].long()]


def _batch(states, actions, rewards, next_states, terminals):
    as_state = lambda ids: torch.tensor([[float(i)] for i in ids])  # noqa: E731
    return (as_state(states), torch.tensor(actions), torch.tensor(rewards), as_state(next_states),
            torch.tensor(terminals))


BATCH = _batch(states=[0, 1, 2], actions=[2, 0, 1], rewards=[1.0, -2.0, 0.5], next_states=[2, 0, 1],
               terminals=[False, False, True])
GAMMA = 0.9


def _expected(double: bool) -> float:
    """rl-agents' compute_bellman_residual, L2, by hand on BATCH."""
    errors = []
    for s, a, r, s2, done in zip([0, 1, 2], [2, 0, 1], [1.0, -2.0, 0.5], [2, 0, 1], [False, False, True]):
        if double:
            best = int(np.argmax(VALUE[s2]))
            nxt = TARGET[s2][best]
        else:
            nxt = max(TARGET[s2])
        target = r + GAMMA * nxt * (0.0 if done else 1.0)
        errors.append((VALUE[s][a] - target) ** 2)
    return sum(errors) / len(errors)


@pytest.mark.parametrize("double", [True, False])
def test_bellman_loss_is_the_hand_computed_l2_residual(double):
    loss = bellman_loss(Table(VALUE), Table(TARGET), BATCH, gamma=GAMMA, double=double)
    assert loss.item() == pytest.approx(_expected(double), rel=1e-6)


def test_double_and_plain_dqn_differ_on_the_planted_batch():
    # the control that makes the test above able to tell the two targets apart
    assert _expected(True) != pytest.approx(_expected(False))


def test_gradients_flow_through_the_taken_actions_only_and_never_into_the_target():
    value, target = Table(VALUE), Table(TARGET)
    bellman_loss(value, target, BATCH, gamma=GAMMA, double=True).backward()
    assert target.q.grad is None, "the target network must not receive gradients"
    taken = torch.zeros_like(value.q, dtype=torch.bool)
    taken[[0, 1, 2], [2, 0, 1]] = True
    assert (value.q.grad[taken] != 0).all() and (value.q.grad[~taken] == 0).all()
    # d/dq of mean (q - y)^2 is 2 (q - y) / n, with y computed by hand
    y0 = 1.0 + GAMMA * TARGET[2][int(np.argmax(VALUE[2]))]
    assert value.q.grad[0, 2].item() == pytest.approx(2 * (VALUE[0][2] - y0) / 3, rel=1e-6)


def _obs(i: int) -> np.ndarray:
    return np.full((2, 3), float(i), np.float32)


def test_replay_memory_is_a_ring_buffer_that_keeps_transitions_aligned():
    memory = ReplayMemory(capacity=4, obs_shape=(2, 3))
    assert (memory.size, memory.position) == (0, 0)
    for i in range(6):
        memory.push(_obs(i), action=i % 3, reward=float(10 * i), next_state=_obs(100 + i), terminal=i % 2 == 1)
        assert memory.size == min(i + 1, 4) and memory.position == (i + 1) % 4
    # pushes 4 and 5 overwrote slots 0 and 1; slots 2 and 3 still hold pushes 2 and 3
    assert memory.state[:, 0, 0].tolist() == [4.0, 5.0, 2.0, 3.0]
    assert memory.next_state[:, 1, 2].tolist() == [104.0, 105.0, 102.0, 103.0]
    assert memory.action.tolist() == [1, 2, 2, 0] and memory.reward.tolist() == [40.0, 50.0, 20.0, 30.0]
    assert memory.terminal.tolist() == [False, True, False, True]
    state, action, reward, next_state, terminal = memory.sample(np.random.default_rng(0), 4)
    ids = state[:, 0, 0].long().tolist()
    assert sorted(ids) == [2, 3, 4, 5], "a full-size sample draws every stored transition once"
    for k, i in enumerate(ids):
        assert next_state[k, 0, 0] == 100 + i and action[k] == i % 3 and reward[k] == 10 * i
        assert bool(terminal[k]) == (i % 2 == 1)


def test_replay_memory_samples_only_what_was_stored_without_replacement():
    memory = ReplayMemory(capacity=50, obs_shape=(2, 3))
    for i in range(1, 11):
        memory.push(_obs(i), 0, 0.0, _obs(i), False)
    rng = np.random.default_rng(3)
    for _ in range(20):
        ids = memory.sample(rng, 10)[0][:, 0, 0].long().tolist()
        assert sorted(ids) == list(range(1, 11)), ids  # never an empty slot (state 0), never twice
    with pytest.raises(ValueError):
        memory.sample(rng, 11)


def test_replay_memory_round_trips_through_its_state_dict():
    memory = ReplayMemory(capacity=3, obs_shape=(2, 3))
    for i in range(4):
        memory.push(_obs(i), i % 3, float(i), _obs(-i), i == 2)
    copy = ReplayMemory(capacity=3, obs_shape=(2, 3))
    copy.load_state_dict(memory.state_dict())
    for key in ("state", "next_state", "action", "reward", "terminal"):
        assert torch.equal(getattr(copy, key), getattr(memory, key)), key
    assert (copy.position, copy.size) == (memory.position, memory.size) == (1, 3)
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    assert all(torch.equal(x, y) for x, y in zip(copy.sample(a, 2), memory.sample(b, 2)))
