"""One action rule everywhere an action is chosen or judged: ``interp.model.policy.choose`` (a rival within
TIE_TOL of the best is tied, the lowest index wins), not ``np.argmax`` and not "margin > 0".

Every test plants the same Q-values, ``TIED_Q`` = (SLOWER 1.0, IDLE 0.5, FASTER 1.0 + 5e-5): the rule takes
SLOWER, plain argmax takes FASTER, and "keep-speed margin > 0" says the agent keeps its speed. A site that
used either other rule turns its test red; ``test_the_planted_q_values_separate_the_three_rules`` shows the
plant does separate them, so no test here can pass by the rules agreeing.
"""
from __future__ import annotations

import numpy as np
import torch

from fixtures.scenario import EgoSpec
from interp.model import policy
from interp.simulation.agent import Agent, untrained_agent
from interp.simulation.rollout import RolloutEngine
from interp.model.config import load_agent_config
from specs import fuzzing as fz
from specs.support import claims
from tests.rollout_support import AGENT_CONFIG, short_env

SLOWER, IDLE, FASTER = 0, 1, 2
TIED_Q = np.array([1.0, 0.5, 1.0 + 5e-5], dtype=np.float32)


def tied_agent(duration: int = 3) -> Agent:
    """The reference architecture answering ``TIED_Q`` whatever it sees (output weights zero, biases TIED_Q)."""
    agent = untrained_agent(load_agent_config(AGENT_CONFIG), short_env(duration), init_seed=0)
    predict = agent.model.output_layer.predict
    with torch.no_grad():
        predict.weight.zero_()
        predict.bias.copy_(torch.from_numpy(TIED_Q))
    return agent.with_model(agent.model, "planted tie SLOWER/FASTER within TIE_TOL")


class TiedSubject:
    """A fuzz subject answering ``TIED_Q`` for every observation."""

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return np.tile(TIED_Q, (len(obs), 1))


def test_the_planted_q_values_separate_the_three_rules():
    gap = float(TIED_Q.max() - TIED_Q[SLOWER])
    assert 0 < gap <= policy.TIE_TOL
    assert int(policy.choose(TIED_Q)[0]) == SLOWER
    assert int(np.argmax(TIED_Q)) == FASTER
    assert claims.keep_speed_margin(TIED_Q[None])[0] > 0


def test_the_engine_takes_the_rules_action_and_counts_the_near_tie():
    agent = tied_agent()
    with RolloutEngine(workers=0, slots=1, cache=None) as engine:
        (record,) = engine.run(agent, [0])
    assert record.length > 0 and set(record.actions) == {SLOWER}
    assert record.near_ties == record.length


def test_agent_act_takes_the_rules_action():
    agent = tied_agent()
    obs = np.zeros((4, 15, 7), np.float32)
    assert agent.act(obs).tolist() == [SLOWER] * 4


def test_the_trainers_greedy_step_takes_the_rules_action(tmp_path):
    from interp.training.train import SlotEpisode, Trainer, TrainSettings

    agent = tied_agent()
    config = {**agent.agent_config, "exploration": {**agent.agent_config["exploration"], "temperature": 0.0,
                                                    "final_temperature": 0.0}}
    trainer = Trainer(TrainSettings(agent_config=config, env_config=agent.env_config, episodes=1, seed=0,
                                    out=tmp_path, workers=0, slots=3))
    trainer.value_net.load_state_dict(agent.model.state_dict())
    for slot in range(3):
        trainer.slots[slot] = SlotEpisode(episode=slot, seed=slot, obs=np.zeros(trainer.obs_shape, np.float32))
    assert trainer.select_actions([0, 1, 2]) == {0: SLOWER, 1: SLOWER, 2: SLOWER}


def test_a_replay_shows_the_rules_actions():
    from interp.replay import build_replay

    agent = tied_agent()
    replay = build_replay(agent, 0, engine=RolloutEngine(workers=0, slots=1, cache=None), render=False)
    run = replay.runs[0]
    assert run.length > 0 and set(run.actions) == {SLOWER}
    assert all(step.near_tie for step in run.steps)


def test_a_fuzz_branch_takes_the_rules_action(builder):
    """The collision property's greedy branch: under argmax the tied subject would drive on (FASTER, as the
    reckless control does, and crash); under the rule it brakes, so no avoidable collision."""
    prop = fz.NoAvoidableCollision()
    space = prop.space(builder)
    route = space.routes.index(("left", "straight"))
    scene = builder.build(space.assemble(EgoSpec(distance=20.0, speed=9.0, turn="left"), route, 0.0, 8.0, ()))
    assert not prop.check(fz.ConstantPolicy(FASTER), scene).holds  # what argmax would do crashes here
    outcome = prop.check(TiedSubject(), scene)
    assert outcome.holds, outcome.summary


def test_the_action_claims_judge_the_rules_action():
    tied = TIED_Q[None]
    clear_keep = np.array([[1.0, 0.5, 1.1]], np.float32)
    assert claims._coarse_action(tied).tolist() == [0]  # the rule slows; "margin > 0" would say keep
    assert claims._coarse_action(clear_keep).tolist() == [1]


def test_action_unchanged_decides_with_the_rule():
    """Before: the planted tie (the rule slows); after (the ego's x set to 1): FASTER lifted by 0.1, a clear
    keep. The action changes in every scene, so the claim fails; by "margin > 0" both are "keep" and it would
    hold."""
    model = tied_agent().model
    before = np.zeros((30, 15, 7), np.float32)
    before[:, 0, 0] = 1.0
    after = before.copy()
    after[:, 0, 1] = 1.0
    seen: dict = {}

    def remember(x, _hook):
        seen["x"] = x

    def lift(q, _hook):
        return q + torch.tensor([0.0, 0.0, 0.1]) * (seen["x"][:, 0, 1:2] == 1.0)

    assert (claims.keep_speed_margin(TIED_Q[None]) > 0).all()  # margin > 0 in both: "unchanged"
    with model.hooks([("hook_input", remember), ("hook_q", lift)]):
        check = claims.action_unchanged(model, before, after)
    assert not check.holds and check.numbers["unchanged"] == 0, check.summary


def test_greedy_flips_and_the_logit_lens_use_the_rule():
    from interp.probes.interventions import greedy_flips
    from interp.probes.logit_lens import logit_lens

    clear_slower = np.array([[1.0, 0.5, 0.9]], np.float32)
    assert greedy_flips(TIED_Q[None], clear_slower).tolist() == [False]  # argmax: FASTER -> SLOWER, a "flip"
    lens = logit_lens(tied_agent().model, np.zeros((3, 15, 7), np.float32))
    assert all(g.tolist() == [SLOWER] * 3 for g in lens.greedy.values())
