"""Pilot: does fitting pure noise, with no simulator, give heads the same attention roles as shuffled-reward DQN?

Why: a null that answers "did the task teach this preference?" must be drawn from networks trained without task
information (docs/guide/roles.md). Shuffled-reward DQN runs cost 20-40 s each, and the rule needs thousands of null
networks per architecture. The gamma-0 measurement (benchmarks/role_shuffled_gamma.py) showed that fitting targets
that carry nothing about the scene is enough to create roles. If a supervised noise fit on stored observations
(one DQN-sized run of Adam steps, no environment) creates roles at the shuffled-reward rate, it is a candidate for
that null at a fraction of the cost. A measurement, not a test.

Each network: the architecture's init under seed ``S``, then ``STEPS`` Adam steps (the agent's optimiser settings,
gradients clipped to [-1, 1] as the trainer does) of the l2 loss between Q(s, a) for a random action and a target
drawn uniformly from [0, 1] (the env's normalised reward range), on batches of 64 from ``N_OBS`` role scenes of a
generator seed that neither the calibration nor the specs use.

Usage: python benchmarks/role_noise_fit.py HEADS FIRST_SEED COUNT   (from the project root; prints per network its
roles and most extreme t, then the count with a Wilson CI)."""
from __future__ import annotations

import sys
import time

sys.path.insert(0, ".")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

import tests.test_roles as T  # noqa: E402
from benchmarks.role_shuffled_gamma import extremes  # noqa: E402
from fixtures.role_scenes import role_scenes  # noqa: E402
from fixtures.builder import SceneBuilder  # noqa: E402
from interp import role_selectivity as RS  # noqa: E402
from interp import roles as R  # noqa: E402
from interp.model.config import resolve_agent_config  # noqa: E402
from interp.simulation.agent import untrained_agent  # noqa: E402

STEPS = 1000  # about the gradient steps of a 100-episode training run (~1,060 transitions, batch 64)
N_OBS = 1000
OBS_SEED = 404  # role-scene generator seed: not interp.seeds.SCENES' 101 / 202 / 303


def noise_fit(agent, seed: int, obs: torch.Tensor) -> torch.nn.Module:
    net = untrained_agent(agent.agent_config, agent.env_config, init_seed=seed).model
    net.train()
    opt = resolve_agent_config(agent.agent_config)["optimizer"]
    adam = torch.optim.Adam(net.parameters(), lr=opt["lr"], weight_decay=opt["weight_decay"])
    rng = torch.Generator().manual_seed(seed)
    for _ in range(STEPS):
        idx = torch.randint(len(obs), (64,), generator=rng)
        action = torch.randint(3, (64,), generator=rng)
        target = torch.rand(64, generator=rng)
        q = net(obs[idx]).gather(1, action[:, None]).squeeze(1)
        loss = torch.nn.functional.mse_loss(q, target)
        adam.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.grad.data.clamp_(-1, 1)
        adam.step()
    net.eval()
    return net


def main(argv: list[str]) -> None:
    heads, first, count = (int(a) for a in argv)
    torch.set_num_threads(1)
    cal = T.calibration_material()
    agent, null = T.architecture(heads, cal)
    scenes = role_scenes(SceneBuilder(agent.env_config, snapshot=False), N_OBS, OBS_SEED)
    obs = torch.from_numpy(np.stack([s.observation for s in scenes]).astype(np.float32))
    hits = 0
    for seed in range(first, first + count):
        start = time.perf_counter()
        net = noise_fit(agent, seed, obs)
        sel = RS.test_selectivity(cal[3], null, R.head_scores(net, cal[0]))
        roles = {c: h for c, h in sel.roles.items() if h}
        hits += bool(roles)
        print(f"seed {seed}: roles {roles or 'none'}; "
              + ", ".join(f"{c} {v:+.1f}" for c, v in extremes(sel).items())
              + f" ({time.perf_counter() - start:.1f} s)", flush=True)
    low, high = proportion_confint(hits, count, 0.05, "wilson")
    print(f"noise fit, {heads} heads: a role in {hits}/{count} networks (95 % Wilson CI {low:.3f}-{high:.3f})")


if __name__ == "__main__":
    main(sys.argv[1:])
