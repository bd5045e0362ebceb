"""Why the graded-outcome specs' untrained control gives the same counts on 2, 4 and 8 heads
(docs/results/graded-outcomes.md): one init seed gives the three architectures the same weights (parameter shapes do
not depend on the head count), and the untrained policy does not depend on what it sees, so all three drive the
same episodes."""
from __future__ import annotations

import numpy as np
import torch

from fixtures.role_scenes import calibration
from interp.model.config import load_env_config
from interp.simulation.agent import untrained_agent
from interp.training import zoo


def test_the_untrained_control_chooses_one_action_everywhere_on_every_head_count():
    env = load_env_config(zoo.ENV_CONFIG)
    obs, _, _ = calibration(env)
    actions, spreads = {}, {}
    for heads in (2, 4, 8):
        agent = untrained_agent(zoo.agent_config(heads), env, init_seed=0)
        with torch.no_grad():
            q = agent.model(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        actions[heads], spreads[heads] = q.argmax(1), float(np.ptp(q, axis=0).max())
    assert len(obs) == 240
    assert all(len(set(a.tolist())) == 1 for a in actions.values()), {h: np.bincount(a) for h, a in actions.items()}
    assert len({int(a[0]) for a in actions.values()}) == 1  # the same action on every architecture
    assert max(spreads.values()) < 0.0025  # the docs' "at most 0.0024"
    # control: a trained agent's policy does depend on the scene
    from interp.simulation.agent import load_agent

    trained = load_agent(zoo.PROJECT_ROOT / "checkpoints" / "reference")
    with torch.no_grad():
        assert len(set(trained.model(torch.as_tensor(obs, dtype=torch.float32)).numpy().argmax(1).tolist())) > 1
