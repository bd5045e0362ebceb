"""The DQN trainer on tiny runs: reproducibility, resuming, and the pieces of the learning loop."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.simulation.agent import load_agent, untrained_agent
from interp.model.config import load_agent_config, load_env_config
from interp.training.train import ReplayMemory, SlotEpisode, Trainer, TrainSettings, bellman_loss, epsilon, train_seed
from interp.simulation.workers import StepResult

ROOT = Path(__file__).resolve().parent.parent
AGENT = load_agent_config(ROOT / "checkpoints" / "reference" / "agent_config.json")
ENV = load_env_config(ROOT / "checkpoints" / "reference" / "env_config.json")
SMALL = {**AGENT, "batch_size": 8, "target_update": 16, "memory_capacity": 200}


def _settings(out: Path, workers: int, episodes: int = 6, seed: int = 3) -> TrainSettings:
    return TrainSettings(agent_config=SMALL, env_config=ENV, episodes=episodes, seed=seed, out=out, workers=workers,
                         slots=2, save_every=3)


def _weights(trainer: Trainer) -> dict:
    return {k: v.clone() for k, v in trainer.value_net.state_dict().items()}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    trainer = Trainer(_settings(tmp_path_factory.mktemp("a"), workers=0))
    trainer.run(progress=False)
    return trainer


def test_same_seed_same_weights_whatever_the_number_of_workers(reference_run, tmp_path):
    """Guard against kernel luck: both runs compute every forward pass and gradient step in this process with
    the same shapes (actions one row at a time by ``interp.model.policy``, fixed-size replay batches); workers
    only step envs, whose results do not depend on which process runs them. The comparison is of one
    computation with itself, so it holds on any CPU (another CPU may train other weights, as a whole)."""
    other = Trainer(_settings(tmp_path, workers=2))
    other.run(progress=False)
    assert reference_run.transitions == other.transitions > 20
    assert reference_run.history == other.history
    a, b = _weights(reference_run), _weights(other)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_interrupted_then_resumed_run_ends_with_the_same_weights(reference_run, tmp_path):
    first = Trainer(_settings(tmp_path, workers=0))
    first.run(progress=False, stop_after_rounds=9)  # stops mid-episode, writes resume.pt
    assert first.transitions < reference_run.transitions
    resumed = Trainer(_settings(tmp_path, workers=0))
    resumed.run(progress=False)
    a, b = _weights(reference_run), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == reference_run.history


def test_a_different_seed_gives_different_weights(reference_run, tmp_path):
    other = Trainer(_settings(tmp_path, workers=0, seed=4))
    other.run(progress=False)
    a, b = _weights(reference_run), _weights(other)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_outputs_load_in_both_formats_with_one_identity(reference_run):
    out = reference_run.s.out
    project = load_agent(out / "agent.pt")
    rl_agents = load_agent(out / "saved_models" / "latest.tar", agent_config=SMALL, env_config=ENV)
    assert project.identity == rl_agents.identity
    raw = torch.load(out / "saved_models" / "latest.tar", weights_only=True)
    assert set(raw) == {"state_dict", "optimizer"}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["train_env_seeds"]["first"] == train_seed(3, 0) >= 1_000_000  # disjoint from evaluation seeds


def test_epsilon_schedule_is_rl_agents_exponential():
    exploration = {"temperature": 1.0, "final_temperature": 0.05, "tau": 15000}
    assert epsilon(exploration, 0) == 1.0
    assert epsilon(exploration, 15000) == pytest.approx(0.05 + 0.95 * math.exp(-1))
    assert epsilon(exploration, 10**7) == pytest.approx(0.05)


def test_actions_are_epsilon_greedy_with_the_scheduled_epsilon(tmp_path):
    from interp.model import policy

    trainer = Trainer(_settings(tmp_path, workers=0))
    rng = np.random.default_rng(7)
    obs = rng.uniform(-1, 1, (3, *trainer.obs_shape)).astype(np.float32)
    obs[:, :, 0] = 1.0
    for slot in range(3):
        trainer.slots[slot] = SlotEpisode(episode=slot, seed=slot, obs=obs[slot])
    greedy = policy.decide(trainer.value_net, obs).actions.tolist()
    for t in (0, 2_000, 15_000, 100_000):
        trainer.transitions = t
        eps = epsilon(trainer.config["exploration"], t)
        replay = np.random.Generator(type(trainer.act_rng.bit_generator)())
        replay.bit_generator.state = trainer.act_rng.bit_generator.state
        expected = {}
        for slot in range(3):  # per slot, in slot order: the explore draw, then the random action
            explore = replay.random() < eps
            random_action = int(replay.integers(3))
            expected[slot] = random_action if explore else greedy[slot]
        assert trainer.select_actions([0, 1, 2]) == expected, t
    trainer.config = {**trainer.config, "exploration": {"temperature": 0.0, "final_temperature": 0.0, "tau": 1}}
    assert trainer.select_actions([2, 0]) == {2: greedy[2], 0: greedy[0]}  # epsilon 0: greedy
    trainer.config = {**trainer.config, "exploration": {"temperature": 1.0, "final_temperature": 1.0, "tau": 1}}
    replay = np.random.Generator(type(trainer.act_rng.bit_generator)())
    replay.bit_generator.state = trainer.act_rng.bit_generator.state
    expected = {}
    for slot in (1, 2):
        replay.random()
        expected[slot] = int(replay.integers(3))
    assert trainer.select_actions([1, 2]) == expected  # epsilon 1: every action random


def test_one_learning_step_is_rl_agents_update(tmp_path):
    """Push, sample a batch, double-DQN L2 loss against the target net, gradients clamped to [-1, 1], one Adam step:
    replayed on copies for two updates, the weights come out bit for bit the same; each update counts once and keeps
    its loss. (Two updates: Adam's first step ignores the gradients' scale, so only the second shows the clamp.)"""
    import copy

    trainer = Trainer(_settings(tmp_path, workers=0))
    assert trainer.config["double"] is True
    with torch.no_grad():  # a target unlike the value net, so double DQN differs from plain DQN
        for p in trainer.target_net.parameters():
            p.add_(torch.from_numpy(np.random.default_rng(1).normal(scale=0.3, size=tuple(p.shape)).astype(np.float32)))
    rng = np.random.default_rng(5)

    def state():
        s = rng.uniform(-1, 1, trainer.obs_shape).astype(np.float32)
        s[:, 0] = 1.0
        return s

    for _ in range(SMALL["batch_size"] - 1):  # one short of a batch: the next learn() makes the first update
        trainer.memory.push(state(), int(rng.integers(3)), float(rng.normal(scale=50)), state(), False)
    trainer.transitions = SMALL["batch_size"] - 1
    net, target = copy.deepcopy(trainer.value_net), copy.deepcopy(trainer.target_net)
    optimizer = torch.optim.Adam(net.parameters(), lr=trainer.config["optimizer"]["lr"],
                                 weight_decay=trainer.config["optimizer"]["weight_decay"])
    memory = copy.deepcopy(trainer.memory)
    replay = np.random.Generator(type(trainer.sample_rng.bit_generator)())
    replay.bit_generator.state = trainer.sample_rng.bit_generator.state
    losses, beyond = [], []
    for step in (1, 2):
        s, s2, action, reward = state(), state(), int(rng.integers(3)), float(rng.normal(scale=50))
        trainer.learn(SlotEpisode(episode=0, seed=0, obs=s), action, StepResult(obs=s2, reward=reward))
        memory.push(s, action, reward, s2, False)
        loss = bellman_loss(net, target, memory.sample(replay, SMALL["batch_size"]), gamma=trainer.config["gamma"],
                            double=True)
        optimizer.zero_grad()
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in net.parameters()])
        beyond.append((bool((grads > 2).any()), bool((grads < -2).any())))
        for p in net.parameters():
            p.grad.data.clamp_(-1, 1)
        optimizer.step()
        losses.append(loss.item())
        assert trainer.updates == step and list(trainer.losses) == losses
    assert beyond[1] == (True, True), "precondition: the second step has gradients beyond both clamps"
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), trainer.value_net.state_dict().values()))


def test_gamma_0_loss_is_the_full_formula_without_the_next_state_forwards():
    """With gamma = 0 the loss skips the next-state forwards (the trained role null's recipe): the same value, bit for
    bit, as the full formula on the same batch, and the next states are never read (NaN there changes nothing)."""
    torch.manual_seed(0)
    net = untrained_agent(AGENT, ENV).model
    target = copy.deepcopy(net)
    rng = np.random.default_rng(3)
    shape = (16, *net_obs_shape(net))
    state = torch.from_numpy(rng.uniform(-1, 1, shape).astype(np.float32))
    nxt = torch.from_numpy(rng.uniform(-1, 1, shape).astype(np.float32))
    batch = (state, torch.from_numpy(rng.integers(0, 3, 16)), torch.from_numpy(rng.normal(size=16).astype(np.float32)),
             nxt, torch.from_numpy(rng.random(16) < 0.2))
    fast = bellman_loss(net, target, batch, 0.0, True)
    full = torch.nn.functional.mse_loss(net(state).gather(1, batch[1].unsqueeze(1)).squeeze(1),
                                        batch[2] + 0.0 * target(nxt).gather(1, net(nxt).argmax(1).unsqueeze(1)).squeeze(1)
                                        * (~batch[4]).float())
    assert torch.equal(fast, full)
    assert torch.equal(bellman_loss(net, target, (*batch[:3], torch.full_like(nxt, float("nan")), batch[4]), 0.0, True),
                       fast)
    assert not torch.equal(bellman_loss(net, target, batch, 0.95, True), fast)  # control: gamma > 0 reads them


def net_obs_shape(net) -> tuple[int, int]:
    n = net.config["in"] // net.config["embedding_layer"]["in"]
    return n, net.config["embedding_layer"]["in"]


def test_loss_decreases_on_a_fixed_batch():
    agent = untrained_agent(AGENT, ENV, init_seed=1)
    net, target = agent.model, untrained_agent(AGENT, ENV, init_seed=1).model
    rng = np.random.default_rng(0)
    memory = ReplayMemory(64, (15, 7))
    for _ in range(64):
        s = rng.uniform(-1, 1, (15, 7)).astype(np.float32)
        s[:, 0] = 1.0
        memory.push(s, int(rng.integers(3)), float(rng.normal()), s, bool(rng.random() < 0.2))
    batch = memory.sample(np.random.default_rng(1), 32)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)
    losses = []
    for _ in range(300):
        loss = bellman_loss(net, target, batch, gamma=0.95, double=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def _drive_learning(trainer: Trainer, transitions: int, seed: int = 0) -> list[tuple[int, bool, bool]]:
    """Feed ``learn`` random transitions one by one; after each, whether the target net equals the value net as it
    was at the last multiple of target_update (or at init), and whether it equals the value net now."""
    rng = np.random.default_rng(seed)
    snapshot = _weights(trainer)  # the target starts as a copy of the value net
    seen = []
    for t in range(1, transitions + 1):
        state = rng.uniform(-1, 1, trainer.obs_shape).astype(np.float32)
        state[:, 0] = 1.0
        ep = SlotEpisode(episode=0, seed=0, obs=state)
        trainer.learn(ep, int(rng.integers(3)), StepResult(obs=state[::-1].copy(), reward=float(rng.normal()),
                                                           terminated=bool(rng.random() < 0.2)))
        if t % SMALL["target_update"] == 0:
            snapshot = _weights(trainer)
        target = trainer.target_net.state_dict()
        value = trainer.value_net.state_dict()
        seen.append((t, all(torch.equal(snapshot[k], target[k]) for k in target),
                     all(torch.equal(value[k], target[k]) for k in target)))
    return seen


def test_target_network_syncs_every_target_update_transitions(tmp_path):
    # transition by transition: the target is the value net of the last sync (t a multiple of target_update),
    # never a later or earlier one; it equals the live value net only right at a sync (the net learns every step)
    trainer = Trainer(_settings(tmp_path, workers=0, episodes=2))
    assert trainer.transitions == 0 and SMALL["batch_size"] < SMALL["target_update"]
    seen = _drive_learning(trainer, 3 * SMALL["target_update"] + 5)
    assert trainer.updates > 0
    stale = [t for t, matches_last_sync, _ in seen if not matches_last_sync]
    assert not stale, f"the target is not the value net of the last sync after transitions {stale[:5]}"
    equal = [t for t, _, now in seen if now and t >= SMALL["batch_size"]]
    assert equal == [t for t, *_ in seen if t % SMALL["target_update"] == 0], equal
    # and in a real run: the target moved away from the initial weights (it synced) and is the live net only at a sync
    run = Trainer(_settings(tmp_path / "run", workers=0, episodes=2))
    initial = _weights(run)
    run.run(progress=False)
    assert run.transitions >= SMALL["target_update"] and run.updates > 0
    target = run.target_net.state_dict()
    assert not all(torch.equal(initial[k], target[k]) for k in target), "the target never synced"
    same = all(torch.equal(a, b) for a, b in zip(run.value_net.state_dict().values(), target.values()))
    assert same == (run.transitions % SMALL["target_update"] == 0)


def test_resume_with_other_settings_is_refused(reference_run, tmp_path):
    first = Trainer(_settings(tmp_path, workers=0))
    first.run(progress=False, stop_after_rounds=3)
    with pytest.raises(Exception, match="other settings"):
        Trainer(_settings(tmp_path, workers=0, seed=9)).run(progress=False)


def test_the_fast_simulator_trains_the_same_weights(reference_run, tmp_path):
    plain = Trainer(dataclasses.replace(_settings(tmp_path, workers=0), fast_sim=False))
    plain.run(progress=False)
    assert plain.history == reference_run.history
    a, b = _weights(reference_run), _weights(plain)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------ shuffled rewards (a control)
def test_shuffle_rewards_off_draws_nothing_and_keeps_the_settings_key(reference_run):
    """Off (the default), the option leaves runs as they were: its generator is never drawn from (so the weights
    are those of ``test_one_learning_step_is_rl_agents_update``'s plain update), the resume key has no new field
    (resume files written before the option still load), and metadata records that rewards were not shuffled."""
    assert reference_run.s.shuffle_rewards is False
    assert reference_run.shuffle_rng.bit_generator.state == np.random.default_rng([3, 3]).bit_generator.state
    assert "shuffle_rewards" not in json.loads(reference_run._settings_key())
    assert json.loads((reference_run.s.out / "metadata.json").read_text())["shuffle_rewards"] is False


def test_shuffled_rewards_permute_each_replay_sample_and_nothing_else(tmp_path, monkeypatch):
    """Known answer: with ``shuffle_rewards`` every replay sample reaches the loss with the same states, actions,
    next states and terminal flags as without, and its rewards permuted among its transitions (a permutation
    that is not the identity in at least one of 6 samples of 8 distinct rewards)."""
    import interp.training.train as train_module

    def batches(shuffle: bool) -> list[tuple]:
        seen = []
        monkeypatch.setattr(train_module, "bellman_loss",
                            lambda net, target, batch, gamma, double: seen.append(batch) or net(batch[0]).sum() * 0.0)
        trainer = Trainer(dataclasses.replace(_settings(tmp_path / str(shuffle), workers=0), shuffle_rewards=shuffle))
        rng = np.random.default_rng(7)
        for i in range(SMALL["batch_size"] + 5):
            s = rng.uniform(-1, 1, trainer.obs_shape).astype(np.float32)
            trainer.learn(SlotEpisode(episode=0, seed=0, obs=s), int(rng.integers(3)),
                          StepResult(obs=s, reward=float(i), terminated=bool(i % 3 == 0)))
        return seen

    plain, shuffled = batches(False), batches(True)
    assert len(plain) == len(shuffled) == 6
    moved = 0
    for a, b in zip(plain, shuffled):
        for field in (0, 1, 3, 4):
            assert torch.equal(a[field], b[field])
        assert torch.equal(torch.sort(a[2]).values, torch.sort(b[2]).values)
        moved += int(not torch.equal(a[2], b[2]))
    assert moved >= 1


def test_a_run_with_shuffled_rewards_trains_other_weights_and_says_so(reference_run, tmp_path):
    run = Trainer(dataclasses.replace(_settings(tmp_path, workers=0), shuffle_rewards=True))
    run.run(progress=False)
    assert run.transitions > 20
    a, b = _weights(reference_run), _weights(run)
    assert not all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "metadata.json").read_text())["shuffle_rewards"] is True
    assert json.loads(run._settings_key())["shuffle_rewards"] is True  # an unshuffled run's resume file is refused


def test_a_shuffled_reward_run_is_another_lineage_and_plain_runs_keep_theirs(reference_run):
    from interp.simulation.lineage import lineage

    meta = reference_run.metadata()
    plain = lineage(meta, SMALL, ENV)["run"]
    assert plain == lineage({k: v for k, v in meta.items() if k != "shuffle_rewards"}, SMALL, ENV)["run"]
    assert lineage({**meta, "shuffle_rewards": True}, SMALL, ENV)["run"] != plain


# ------------------------------------------------------------------------------------------ env seeds from a block
def test_an_episode_seed_base_puts_the_episodes_on_its_block_and_says_so(reference_run, tmp_path):
    """With ``episode_seed_base`` episode k runs on env seed base + k (the trained role null's networks each take a
    block of ``interp.seeds.EPISODES["role_null_training"]``), recorded in the metadata and the resume key; unset,
    the trainer's rule and the resume key of earlier runs stay (control: the reference run)."""
    from interp import seeds as S

    base = S.role_null_block(0)
    run = Trainer(dataclasses.replace(_settings(tmp_path, workers=0, episodes=3), episode_seed_base=base))
    run.run(progress=False)
    assert sorted(h["seed"] for h in run.history) == [base, base + 1, base + 2]
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["train_env_seeds"] == {"first": base, "last": base + 2, "rule": f"{base} + episode"}
    assert json.loads(run._settings_key())["episode_seed_base"] == base
    assert sorted(h["seed"] for h in reference_run.history) == [train_seed(3, k) for k in range(6)]
    assert "episode_seed_base" not in json.loads(reference_run._settings_key())
