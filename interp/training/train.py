"""DQN training of the ego-attention network, as rl-agents does it, with parallel experience collection.

Read top to bottom: ``Trainer.__init__`` sets everything up from the configs (rl-agents' defaults where a
config is silent); ``run`` loops over lock-step rounds: pick actions for all live slots in one batch
(epsilon-greedy), step them in the worker pool, push each transition in slot order and take one gradient
step per transition (double DQN, L2 loss, gradients clamped to [-1, 1]); sync the target network every
``target_update`` transitions; save checkpoints. All randomness flows from ``--seed``: network init, the
exploration/replay generators, and the training episodes' env seeds, so the same command gives the same
weights whatever the number of workers. ``--resume`` restores memory, optimizer, generators, counters and
replays each in-progress episode's actions from its seed, so an interrupted run ends where an
uninterrupted one does.

Deviations from rl-agents, on purpose:

- only ``terminated`` (crash/arrival) stops bootstrapping; a time-limit truncation still bootstraps, since the
  state after it has value;
- the greedy part of epsilon-greedy is ``interp.model.policy``'s rule (one row at a time; a rival within 1e-4
  of the best Q is tied and the lowest action index wins), where rl-agents takes ``np.argmax``, so the trainer
  acts as rollouts, replays and specs judge (docs/how-it-works/action-rule.md gives how rarely the two differ).
  The Double-DQN target's argmax in ``bellman_loss`` is not an action choice and stays rl-agents'.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import platform
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from interp.atomic import write_files
from interp.model import checkpoint as ckpt
from interp.model import policy
from interp.simulation.agent import build_model
from interp.model.config import canonical_json, resolve_agent_config
from interp.errors import CheckpointError, ConfigError
from interp.simulation.workers import EnvPool, Reset, Step, StepResult

TRAIN_SEED_STRIDE = 1_000_000  # training episode k of seed S uses env seed (S + 1) * STRIDE + k
RESUME_FILE = "resume.pt"
RESUME_EVERY = 50  # episodes between resume files (snapshots also write one)


def train_seed(seed: int, episode: int) -> int:
    """Env seed of training episode ``episode``; disjoint from evaluation seeds below 1e6."""
    return (seed + 1) * TRAIN_SEED_STRIDE + episode


def epsilon(exploration: dict, t: int) -> float:
    """rl-agents' EpsilonGreedy: final + (start - final) * exp(-t / tau)."""
    start, final, tau = exploration["temperature"], exploration["final_temperature"], exploration["tau"]
    return final + (start - final) * math.exp(-t / tau)


class ReplayMemory:
    """A ring buffer of transitions as tensors (so it saves with weights_only-safe torch.save)."""

    def __init__(self, capacity: int, obs_shape: tuple[int, int]) -> None:
        self.capacity = capacity
        self.state = torch.zeros((capacity, *obs_shape))
        self.next_state = torch.zeros((capacity, *obs_shape))
        self.action = torch.zeros(capacity, dtype=torch.long)
        self.reward = torch.zeros(capacity)
        self.terminal = torch.zeros(capacity, dtype=torch.bool)
        self.position = 0
        self.size = 0

    def push(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray, terminal: bool) -> None:
        i = self.position
        self.state[i] = torch.from_numpy(state)
        self.next_state[i] = torch.from_numpy(next_state)
        self.action[i], self.reward[i], self.terminal[i] = action, reward, terminal
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        idx = torch.from_numpy(rng.choice(self.size, size=batch_size, replace=False))
        return self.state[idx], self.action[idx], self.reward[idx], self.next_state[idx], self.terminal[idx]

    def state_dict(self) -> dict:
        return {"state": self.state, "next_state": self.next_state, "action": self.action, "reward": self.reward,
                "terminal": self.terminal, "position": self.position, "size": self.size}

    def load_state_dict(self, data: dict) -> None:
        for key in ("state", "next_state", "action", "reward", "terminal"):
            getattr(self, key).copy_(data[key])
        self.position, self.size = int(data["position"]), int(data["size"])


def bellman_loss(value_net, target_net, batch, gamma: float, double: bool) -> torch.Tensor:
    """rl-agents' ``compute_bellman_residual`` with the L2 loss."""
    state, action, reward, next_state, terminal = batch
    q = value_net(state).gather(1, action.unsqueeze(1)).squeeze(1)
    if gamma == 0:  # the target is the reward alone: the next state's value is multiplied by 0, so skip its forwards
        return F.mse_loss(q, reward)
    with torch.no_grad():
        if double:
            best = value_net(next_state).argmax(1)  # rl-agents' target, not an action choice: not policy's rule
            next_value = target_net(next_state).gather(1, best.unsqueeze(1)).squeeze(1)
        else:
            next_value = target_net(next_state).max(1).values
        target = reward + gamma * next_value * (~terminal).float()
    return F.mse_loss(q, target)


@dataclasses.dataclass
class SlotEpisode:
    """An episode in progress in one slot: enough to replay it after a resume."""

    episode: int
    seed: int
    obs: np.ndarray
    actions: list[int] = dataclasses.field(default_factory=list)
    ret: float = 0.0


@dataclasses.dataclass
class TrainSettings:
    agent_config: dict
    env_config: dict
    episodes: int
    seed: int
    out: Path
    workers: int | None = None
    slots: int = 4
    save_every: int = 250
    command: str = ""
    fast_sim: bool = True  # interp.simulation.fastsim inside its verified scope: identical trajectories and weights, faster
    # A control, not a way to train agents: each replay sample's rewards are permuted among its transitions (see
    # Trainer.learn). Off by default; off, no extra draw happens, so existing runs and their weights are unchanged.
    shuffle_rewards: bool = False
    # Env seed of episode k: base + k instead of ``train_seed(seed, k)``, for many short runs whose seeds must stay in
    # a block of their own (the trained role null's networks, ``interp.seeds.EPISODES["role_null_training"]``).
    episode_seed_base: int | None = None


class Trainer:
    def __init__(self, settings: TrainSettings) -> None:
        self.s = settings
        self.config = resolve_agent_config(settings.agent_config)
        if self.config.get("n_steps", 1) != 1:
            raise ConfigError("n_steps > 1 is not supported by hypodrive's trainer; set n_steps to 1")
        if self.config["loss_function"] != "l2" or self.config["optimizer"]["type"] != "ADAM":
            raise ConfigError("hypodrive's trainer implements rl-agents' Adam + l2 loss; set optimizer.type ADAM, loss_function l2")
        torch.set_num_threads(1)  # small network: one thread is fastest and bit-reproducible
        with torch.random.fork_rng():
            torch.manual_seed(settings.seed)
            self.value_net, self.action_names = build_model(settings.agent_config, settings.env_config)
        self.target_net = copy.deepcopy(self.value_net)
        self.target_net.eval()
        opt = self.config["optimizer"]
        self.optimizer = torch.optim.Adam(self.value_net.parameters(), lr=opt["lr"], weight_decay=opt["weight_decay"])
        n_entities = self.value_net.config["in"] // self.value_net.config["embedding_layer"]["in"]
        self.obs_shape = (n_entities, self.value_net.config["embedding_layer"]["in"])
        self.memory = ReplayMemory(self.config["memory_capacity"], self.obs_shape)
        self.act_rng = np.random.default_rng([settings.seed, 1])
        self.sample_rng = np.random.default_rng([settings.seed, 2])
        self.shuffle_rng = np.random.default_rng([settings.seed, 3])  # draws only with shuffle_rewards
        self.transitions = 0
        self.updates = 0
        self.episodes_started = 0
        self.history: list[dict] = []
        self.slots: dict[int, SlotEpisode] = {}
        self.wall_time = 0.0
        self.losses: deque[float] = deque(maxlen=500)

    # ---------------------------------------------------------------- acting and learning
    def select_actions(self, live: list[int]) -> dict[int, int]:
        """Epsilon-greedy for every live slot; the greedy part by ``interp.model.policy`` (one row at a time, the
        near-tie rule, as in rollouts), so the weights do not depend on the slot layout; draws in slot order."""
        obs = np.zeros((len(live), *self.obs_shape), np.float32)
        for i, slot in enumerate(live):
            obs[i] = self.slots[slot].obs
        greedy = dict(zip(live, policy.decide(self.value_net, obs).actions.tolist()))
        eps = epsilon(self.config["exploration"], self.transitions)
        actions = {}
        for slot in live:
            explore = self.act_rng.random() < eps
            random_action = int(self.act_rng.integers(len(self.action_names)))
            actions[slot] = random_action if explore else int(greedy[slot])
        return actions

    def learn(self, ep: SlotEpisode, action: int, result: StepResult) -> None:
        """Store the transition and take one gradient step on a replay sample.

        With ``shuffle_rewards`` the sample's rewards are permuted among its transitions (a fresh permutation per
        step, from its own generator seeded by ``--seed``) before the Bellman target is formed. Why within the
        replay sample and not across an episode: a whole episode's rewards keep its outcome (a crash or an
        arrival shows in every permutation of them), while a permutation within the sample breaks the link
        between a state-action and its reward and keeps everything else: the same transitions, exploration,
        number of updates, reward distribution and terminal flags (those stay with their transitions, so
        bootstrapping stops where it did). The network learns a value with no reward signal tied to the state:
        a negative control for claims that training created a mechanism."""
        self.memory.push(ep.obs, action, result.reward, result.obs, result.terminated)
        self.transitions += 1
        if self.memory.size >= self.config["batch_size"]:
            batch = self.memory.sample(self.sample_rng, self.config["batch_size"])
            if self.s.shuffle_rewards:
                state, act, reward, next_state, terminal = batch
                order = torch.from_numpy(self.shuffle_rng.permutation(len(reward)))
                batch = (state, act, reward[order], next_state, terminal)
            loss = bellman_loss(self.value_net, self.target_net, batch, self.config["gamma"], self.config["double"])
            self.optimizer.zero_grad()
            loss.backward()
            for param in self.value_net.parameters():
                param.grad.data.clamp_(-1, 1)
            self.optimizer.step()
            self.updates += 1
            self.losses.append(loss.item())
        if self.transitions % self.config["target_update"] == 0:
            self.target_net.load_state_dict(self.value_net.state_dict())

    # ---------------------------------------------------------------- episodes
    def start_episode(self, slot: int) -> Reset | None:
        if self.episodes_started >= self.s.episodes:
            return None
        k = self.episodes_started
        self.episodes_started += 1
        self.slots[slot] = SlotEpisode(episode=k, seed=self.episode_seed(k), obs=np.zeros(self.obs_shape, np.float32))
        return Reset(seed=self.slots[slot].seed)

    def episode_seed(self, k: int) -> int:
        base = self.s.episode_seed_base
        return train_seed(self.s.seed, k) if base is None else base + k

    def finish_episode(self, slot: int, result: StepResult) -> None:
        ep = self.slots.pop(slot)
        self.history.append({"episode": ep.episode, "seed": ep.seed, "return": ep.ret, "length": len(ep.actions),
                             "crashed": result.crashed, "arrived": result.arrived, "transitions": self.transitions})

    def next_commands(self) -> dict[int, Reset | Step]:
        """Resets for free slots (while episodes remain), then one batched action choice for the live ones."""
        commands: dict[int, Reset | Step] = {}
        for slot in range(self.s.slots):
            if slot not in self.slots:
                reset = self.start_episode(slot)
                if reset is not None:
                    commands[slot] = reset
        live = [slot for slot in sorted(self.slots) if slot not in commands]
        if live:
            commands.update({slot: Step(a) for slot, a in self.select_actions(live).items()})
        return commands

    def run(self, progress: bool = True, stop_after_rounds: int | None = None) -> None:
        """Train until ``episodes`` episodes have finished (or ``stop_after_rounds``, to test resuming)."""
        from tqdm import tqdm

        self.s.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=self.s.episodes, initial=len(self.history), desc="train", unit="ep", disable=not progress,
                   dynamic_ncols=True, mininterval=2.0)
        with EnvPool(self.s.env_config, self.s.slots, self.s.workers, fast_sim=self.s.fast_sim) as pool:
            commands = self._restore_or_start()
            t0, steps0, rounds = time.perf_counter(), self.transitions, 0  # after a resume: the rate since this process started
            bar.n = len(self.history)
            while commands:
                started = time.perf_counter()
                results = pool.run(commands)
                finished_before = len(self.history)
                for slot in sorted(results):
                    self._absorb(slot, commands[slot], results[slot])
                commands = self.next_commands()
                self.wall_time += time.perf_counter() - started
                rounds += 1
                done = len(self.history)
                if done // self.s.save_every != finished_before // self.s.save_every:
                    self.save_all(commands, snapshot=True)
                elif done // RESUME_EVERY != finished_before // RESUME_EVERY:
                    self.save_resume(commands)
                if progress:
                    self._progress(bar, t0, steps0)
                if stop_after_rounds is not None and rounds >= stop_after_rounds:
                    self.save_resume(commands)
                    bar.close()
                    return
        bar.close()
        self.save_all({}, snapshot=False, final=True)

    def _absorb(self, slot: int, command: Reset | Step, result: StepResult) -> None:
        """Fold one worker result into the slot's episode (and learn from it)."""
        ep = self.slots[slot]
        if isinstance(command, Reset) and not command.actions:
            ep.obs = result.obs
            return
        # A Step, or after a resume a Reset replaying the episode: its last replayed action is the pending step.
        action = command.action if isinstance(command, Step) else command.actions[-1]
        self.learn(ep, action, result)
        ep.actions.append(action)
        ep.ret += result.reward
        ep.obs = result.obs
        if result.done:
            self.finish_episode(slot, result)

    def _progress(self, bar, t0: float, steps0: int) -> None:
        recent = self.history[-100:]
        bar.n = len(self.history)
        rate = (self.transitions - steps0) / max(time.perf_counter() - t0, 1e-9)
        if recent:
            bar.set_postfix(steps=self.transitions, sps=f"{rate:.1f}", ret=f"{np.mean([h['return'] for h in recent]):.2f}",
                            crash=f"{np.mean([h['crashed'] for h in recent]):.2f}",
                            arrive=f"{np.mean([h['arrived'] for h in recent]):.2f}",
                            eps=f"{epsilon(self.config['exploration'], self.transitions):.2f}", refresh=False)
        bar.refresh()

    # ---------------------------------------------------------------- saving and resuming
    def metadata(self) -> dict:
        import gymnasium
        import highway_env

        return {
            "command": self.s.command, "seed": self.s.seed, "episodes": len(self.history),
            "episodes_requested": self.s.episodes, "transitions": self.transitions, "updates": self.updates,
            "shuffle_rewards": self.s.shuffle_rewards,
            "wall_time_s": round(self.wall_time, 1), "slots": self.s.slots, "workers": self.s.workers,
            "train_env_seeds": {"first": self.episode_seed(0), "last": self.episode_seed(max(self.episodes_started - 1, 0)),
                                "rule": (f"(seed + 1) * {TRAIN_SEED_STRIDE} + episode" if self.s.episode_seed_base is None
                                         else f"{self.s.episode_seed_base} + episode")},
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                         "gymnasium": gymnasium.__version__, "highway_env": getattr(highway_env, "__version__", "1.12.1")},
        }

    def save_all(self, pending: dict, snapshot: bool, final: bool = False) -> None:
        """rl-agents files (latest.tar, checkpoint-<ep>.tar), the hypodrive one-file format, history, resume state."""
        out, n = self.s.out, len(self.history)
        state, opt = self.value_net.state_dict(), self.optimizer.state_dict()
        ckpt.save_rl_agents(out / "saved_models" / "latest.tar", state, opt)
        ckpt.save_project(out / ckpt.PROJECT_FILE, state, agent_config=self.s.agent_config, env_config=self.s.env_config,
                          metadata=self.metadata(), optimizer_state=opt)
        if snapshot:
            ckpt.save_rl_agents(out / "saved_models" / f"checkpoint-{n}.tar", state, opt)
            ckpt.save_project(out / "snapshots" / f"episode-{n}.pt", state, agent_config=self.s.agent_config,
                              env_config=self.s.env_config, metadata=self.metadata())
        if final:
            ckpt.save_rl_agents(out / "saved_models" / "checkpoint-final.tar", state, opt)
        write_files(out, {"history.json": json.dumps(self.history),
                          "agent_config.json": json.dumps(self.s.agent_config, indent=2),
                          "env_config.json": json.dumps(self.s.env_config, indent=2),
                          "metadata.json": json.dumps(self.metadata(), indent=2)}, what="the run's records")
        self.save_resume(pending)  # also at the end, so a finished run can be extended

    def save_resume(self, pending: dict[int, Reset | Step]) -> None:
        """Everything needed to continue bit-for-bit, at a round boundary with ``pending`` commands drawn.

        Episodes in progress are stored as (seed, actions, obs); on resume each is rebuilt by replaying its
        actions from its seed, the pending action last, so the generators continue where they were.
        """
        slots = {}
        for i, ep in self.slots.items():
            cmd = pending.get(i)
            slots[str(i)] = {"episode": ep.episode, "seed": ep.seed, "actions": list(ep.actions), "ret": ep.ret,
                             "pending": cmd.action if isinstance(cmd, Step) else None}
        payload = {
            "settings": self._settings_key(),
            "value_net": self.value_net.state_dict(), "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(), "memory": self.memory.state_dict(),
            "act_rng": json.dumps(self.act_rng.bit_generator.state), "sample_rng": json.dumps(self.sample_rng.bit_generator.state),
            "shuffle_rng": json.dumps(self.shuffle_rng.bit_generator.state),
            "counters": json.dumps({"transitions": self.transitions, "updates": self.updates,
                                    "episodes_started": self.episodes_started, "wall_time": self.wall_time}),
            "slots": json.dumps(slots), "history": json.dumps(self.history),
            "obs": {str(i): torch.from_numpy(ep.obs) for i, ep in self.slots.items()},
        }
        tmp = self.s.out / (RESUME_FILE + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(self.s.out / RESUME_FILE)  # atomic: an interrupted save never leaves a torn file

    def _settings_key(self) -> str:
        extra = {"shuffle_rewards": True} if self.s.shuffle_rewards else {}  # off: the key of runs before the option
        if self.s.episode_seed_base is not None:  # likewise: unset, the key of runs before the option
            extra["episode_seed_base"] = self.s.episode_seed_base
        return canonical_json({"agent_config": self.s.agent_config, "env_config": self.s.env_config,
                               "episodes": self.s.episodes, "seed": self.s.seed, "slots": self.s.slots, **extra})

    def load_resume(self) -> dict[int, Reset | Step]:
        """Restore a run and return the commands of its pending round."""
        path = self.s.out / RESUME_FILE
        payload = ckpt.safe_torch_load(path)
        stored, current = json.loads(payload["settings"]), json.loads(self._settings_key())
        if {k: v for k, v in stored.items() if k != "episodes"} != {k: v for k, v in current.items() if k != "episodes"}:
            raise CheckpointError(f"{path} was written by a run with other settings (configs, seed or slots); "
                                  "resume with the same command, or use a new --out folder")
        if current["episodes"] < stored["episodes"]:
            raise CheckpointError(f"{path} is a run of {stored['episodes']} episodes; --episodes can only grow "
                                  f"(extend the run), not shrink to {current['episodes']}")
        self.value_net.load_state_dict(payload["value_net"])
        self.target_net.load_state_dict(payload["target_net"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.memory.load_state_dict(payload["memory"])
        self.act_rng.bit_generator.state = json.loads(payload["act_rng"])
        self.sample_rng.bit_generator.state = json.loads(payload["sample_rng"])
        if "shuffle_rng" in payload:  # resume files written before the option have none (and never drew from it)
            self.shuffle_rng.bit_generator.state = json.loads(payload["shuffle_rng"])
        counters = json.loads(payload["counters"])
        self.transitions, self.updates = counters["transitions"], counters["updates"]
        self.episodes_started, self.wall_time = counters["episodes_started"], counters["wall_time"]
        self.history = json.loads(payload["history"])
        commands: dict[int, Reset | Step] = {}
        for key, data in json.loads(payload["slots"]).items():
            slot = int(key)
            self.slots[slot] = SlotEpisode(episode=data["episode"], seed=data["seed"], obs=payload["obs"][key].numpy(),
                                           actions=list(data["actions"]), ret=data["ret"])
            if data["pending"] is None:  # a new episode whose reset was pending
                commands[slot] = Reset(seed=data["seed"])
            else:
                commands[slot] = Reset(seed=data["seed"], actions=(*data["actions"], data["pending"]))
        return commands

    def _restore_or_start(self) -> dict[int, Reset | Step]:
        """The first round's commands: the pending round of a resumed run, or fresh resets.

        Resuming with a larger ``episodes`` extends a run: the same network, memory, optimizer and generators
        go on with new episodes. (Not bit-identical to one longer run: the shorter run drained its slots.)
        """
        if (self.s.out / RESUME_FILE).exists():
            return self.load_resume() or self.next_commands()
        return self.next_commands()


def train(settings: TrainSettings, progress: bool = True) -> Trainer:
    trainer = Trainer(settings)
    trainer.run(progress=progress)
    return trainer
