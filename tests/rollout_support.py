"""Shared pieces of the rollout-engine tests: short episodes, a planted near-tie agent, forcing hooks and a
picklable scene set-up."""
from __future__ import annotations

import numpy as np
import torch

from interp.simulation.agent import Agent, untrained_agent
from interp.model.config import load_agent_config, load_env_config
from tests.planted import ROOT

AGENT_CONFIG = ROOT / "checkpoints" / "reference" / "agent_config.json"
ENV_CONFIG = ROOT / "checkpoints" / "reference" / "env_config.json"
SLOWER, IDLE, FASTER = 0, 1, 2


def short_env(duration: int) -> dict:
    """The reference env config with episodes of at most ``duration`` steps (policy_frequency 1)."""
    env = load_env_config(ENV_CONFIG)
    env["duration"] = duration
    return env


def near_tie_agent(duration: int = 4) -> Agent:
    """The reference architecture with SLOWER and FASTER tied to within a few float32 ulps (~1e-7): FASTER's
    output weights are SLOWER's times (1 + 1e-7 noise), equal biases, IDLE far below. Which of the two wins
    is decided by rounding, so any change in how a Q-value is computed (e.g. the batch size) flips actions."""
    agent = untrained_agent(load_agent_config(AGENT_CONFIG), short_env(duration), init_seed=0)
    predict = agent.model.output_layer.predict
    with torch.no_grad():
        noise = torch.randn(predict.weight.shape[1], generator=torch.Generator().manual_seed(1))
        predict.weight[FASTER] = predict.weight[SLOWER] * (1 + 1e-7 * noise)
        predict.bias[FASTER] = predict.bias[SLOWER]
        predict.bias[IDLE] = -10.0
    return agent.with_model(agent.model, "planted near-tie SLOWER/FASTER")


def random_obs(n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 15, 7)).astype(np.float32)
    x[:, :, 0] = rng.random((n, 15)) < 0.6
    x[:, 0, 0] = 1
    return torch.from_numpy(x)


def force(action: int):
    """A hook on ``hook_q`` that makes ``action`` the greedy one."""
    def hook(q, _hook):
        q = q.clone()
        q[:, action] += 100.0
        return q

    return hook


class EmptyRoad:
    """A picklable scene set-up: remove every other vehicle, keep the ego, observe."""

    def __call__(self, env):
        core = env.unwrapped
        core.road.vehicles = [core.vehicle]
        return core.observation_type.observe()

    def describe(self) -> dict:
        return {"scene": "empty road"}


class FailingSetup:
    """A set-up that raises in the worker (its traceback must reach the caller)."""

    def __call__(self, env):
        raise ValueError("planted set-up failure")


class KillWorker:
    """A picklable set-up that SIGKILLs the worker process running it: the first time only (a marker file
    remembers), or every time. Nothing else changes: it then observes, like any set-up."""

    def __init__(self, marker, always: bool = False) -> None:
        self.marker, self.always = str(marker), always

    def __call__(self, env):
        import os
        import signal

        if self.always or not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return env.unwrapped.observation_type.observe()

    def describe(self) -> dict:
        return {"scene": "kill the worker once"}
