"""Head roles (interp.roles): the attention rule can pass and fail, random networks almost never get a role, the
causal rule reads the sequential verdicts, the seed map is disjoint, and the spec side skips unresolved roles as
not-applicable."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from statsmodels.stats.proportion import proportion_confint

from interp import roles as R
from interp import seeds as S

CATS = ("ego", "crossing")


# ------------------------------------------------------------------------------------------ the rule, synthetic
def _profile(values: list[list[float]]) -> np.ndarray:
    """[2, H, C] from per-half lists [[h0c0, h0c1], ...] given for half 0; half 1 the same."""
    half = np.array(values, dtype=float)
    return np.stack([half, half])


def test_a_head_beating_the_null_maximum_on_both_halves_gets_the_role_listed_by_margin():
    profile = _profile([[0.9, 0.1], [0.95, 0.2], [0.3, 0.1]])
    null = np.full((39, 2, 2), 0.5)
    null[0] = 0.6  # the maximum, not a quantile, is the bar
    roles, margins, reasons = R.resolve_attention(profile, null, np.full((2, 2), 60), CATS)
    assert roles["ego"] == [1, 0]  # largest margin first
    assert roles["crossing"] == []
    assert "no head beats the null maximum" in reasons["crossing"] and "0.600" in reasons["crossing"]
    assert margins[1, 0] == pytest.approx(0.35)


def test_beating_the_null_on_one_half_only_is_not_a_role():
    profile = _profile([[0.9, 0.1]])
    profile[1, 0, 0] = 0.55  # second half below the null maximum
    null = np.full((39, 2, 2), 0.5)
    null[:, :, 0] = np.linspace(0.1, 0.6, 39)[:, None]
    roles, _, reasons = R.resolve_attention(profile, null, np.full((2, 2), 60), CATS)
    assert roles["ego"] == []
    assert "0.900 / 0.550" in reasons["ego"]


def test_a_category_seen_in_too_few_scenes_gives_no_role_and_says_why():
    profile = _profile([[0.9, 0.9]])
    null = np.zeros((39, 2, 2))
    roles, _, reasons = R.resolve_attention(profile, null, np.array([[60, 3], [60, 60]]), CATS)
    assert roles == {"ego": [0], "crossing": []}
    assert "too few calibration scenes" in reasons["crossing"]


def test_the_null_needs_at_least_39_networks():
    with pytest.raises(ValueError, match="at least 39"):
        R.attention_roles(torch.nn.Identity(), np.zeros((4, 15, 7), np.float32), {"ego": np.zeros((4, 15), bool)},
                          n_null=38)


# ------------------------------------------------------------------------------------------ real calibration scenes
@pytest.fixture(scope="module")
def calibration():
    from interp.simulation.agent import load_agent
    from fixtures.role_scenes import calibration as build

    agent = load_agent("checkpoints/reference")
    obs, masks = build(agent.env_config)
    return agent, obs, masks


@pytest.fixture(scope="module")
def null(calibration):
    agent, obs, masks = calibration
    return R.null_profiles(agent.model, obs, masks, S.init_seeds("role_null", R.N_NULL))


def _n_scenes(obs, masks):
    present = np.stack([masks[c].any(-1) for c in masks], axis=-1)
    return np.stack([present[h].sum(0) for h in R.halves(len(obs))])


def test_random_networks_almost_never_get_an_attention_role(calibration, null, record_property):
    """The false-resolution rate of attention roles on 400 fresh random networks (init seeds the null never used):
    the share of networks on which ANY attention role resolves. The 95 % Wilson upper bound must be <= 5 %."""
    agent, obs, masks = calibration
    n_scenes = _n_scenes(obs, masks)
    fresh = S.init_seeds("role_null_check", 400)
    assert not set(fresh) & set(S.init_seeds("role_null", R.N_NULL))
    hits = 0
    for net in R.random_networks(agent.model, fresh):
        roles, _, _ = R.resolve_attention(R.split_profiles(net, obs, masks), null, n_scenes, tuple(masks))
        hits += any(roles.values())
    low, high = proportion_confint(hits, len(fresh), alpha=0.05, method="wilson")
    record_property("false_resolution", f"{hits}/{len(fresh)} (95% CI {low:.4f}-{high:.4f})")
    print(f"false-resolution rate of attention roles: {hits}/{len(fresh)} = {hits / len(fresh):.4f} "
          f"(95% Wilson CI {low:.4f}-{high:.4f})")
    assert high <= 0.05


def test_a_planted_head_attending_to_the_ego_gets_the_ego_role_and_nothing_else(calibration, null):
    """A random network edited so that head 0 puts all its attention on the ego row: it must get ``ego`` (the rule
    can pass), and the unedited heads no role (it can fail)."""
    agent, obs, masks = calibration
    net = R.random_networks(agent.model, [S.INITS["role_null_check"][0] + 999])[0]

    class Planted(torch.nn.Module):
        def attention(self, x):
            pattern = net.attention(x).clone()
            pattern[:, 0] = 0.0
            pattern[:, 0, :, 0] = 1.0  # the ego is row 0
            return pattern

    roles, _, reasons = R.resolve_attention(R.split_profiles(Planted(), obs, masks), null, _n_scenes(obs, masks),
                                            tuple(masks))
    assert roles["ego"] == [0], reasons["ego"]
    assert all(0 not in heads for role, heads in roles.items() if role != "ego")


def test_reference_roles_are_stable_across_the_halves(calibration):
    agent, obs, masks = calibration
    att = R.attention_roles(agent.model, obs, masks)
    st = R.split_half_stability(att)
    assert st["profile_correlation"] > 0.9 and st["best_head_agrees"] >= st["categories"] - 1
    assert set(att.roles) == set(R.CATEGORIES)


# ------------------------------------------------------------------------------------------ causal roles
@dataclasses.dataclass
class _V:
    verdict: str
    effect: float

    def to_dict(self):
        return {"verdict": self.verdict, "effect": self.effect, "ci": [self.effect - 0.1, self.effect + 0.1], "n": 100,
                "p_value": 0.01 if self.verdict == "supported" else 0.5}


def test_causal_roles_list_supported_heads_by_effect_and_explain_unresolved(monkeypatch):
    import interp.simulation.rollout as rollout_module

    calls = []

    def fake(engine, agent, conditions, *, seeds, design, outcome, **kw):
        calls.append((outcome, design.direction, seeds))
        table = {"crashed": [("supported", 0.1), ("supported", 0.3), ("refuted", 0.0)],
                 "arrived": [("inconclusive", -0.02), ("refuted", 0.0), ("refuted", 0.01)]}[outcome]
        return type("Result", (), {"verdicts": {f"ablate head {h}": _V(*table[h]) for h in range(3)}})()

    monkeypatch.setattr(rollout_module, "run_sequential", fake)
    agent = type("Agent", (), {"n_heads": 3})()
    cz = R.causal_roles(object(), agent, max_pairs=60)
    assert cz.roles == {"safety": [1, 0], "progress": []}
    assert "head 1" in cz.reasons["safety"] and "no head's ablation lowers arrivals" in cz.reasons["progress"]
    assert [(o, d) for o, d, _ in calls] == [("crashed", "increase"), ("arrived", "decrease")]
    assert all(seeds == S.episode_seeds("calibration", 60) for _, _, seeds in calls)


# ------------------------------------------------------------------------------------------ the seed map
def test_the_seed_map_is_disjoint_and_guards_its_ranges():
    S.check_disjoint()
    assert S.episode_seeds("calibration", 10) == range(300_000, 300_010)
    with pytest.raises(ValueError, match="leave its range"):
        S.episode_seeds("heldout", 800, offset=S.MAX_SEED_OFFSET + 9_500)
    calibration, held_out = set(S.episode_seeds("calibration", 800)), set(S.episode_seeds("ablation", 800, 89_000))
    assert not calibration & held_out


# ------------------------------------------------------------------------------------------ the spec side
def test_an_unresolved_role_is_not_applicable_and_pins_override():
    from specs.support import roles as SR

    data = {"n_heads": 2, "roles": {"crossing": [], "ego": [1, 0]}, "reasons": {"crossing": "no head beats it"},
            "heads": [{"head": h, "profile": {"crossing": {"halves": [0.1, 0.2]}, "ego": {"halves": [0.5, 0.5]}},
                       "effects": {}} for h in range(2)]}
    res = SR.resolutions(data, {}, 2)
    assert res["ego"].head == 1 and res["crossing"].head is None
    with pytest.raises(pytest.skip.Exception, match="^not-applicable: the crossing role did not resolve"):
        SR.require(res["crossing"])
    assert SR.resolutions(data, {"crossing": 0}, 2)["crossing"].head == 0
    with pytest.raises(ValueError, match="heads 0..1"):
        SR.resolutions(data, {"crossing": 5}, 2)


def test_resolutions_of_a_category_never_seen_stay_json_clean():
    import json

    from specs.support import roles as SR

    data = {"n_heads": 1, "roles": {"behind": []}, "reasons": {"behind": "too few"},
            "heads": [{"head": 0, "profile": {"behind": {"halves": [None, None]}}, "effects": {}}]}
    res = SR.resolutions(data, {}, 1)
    json.dumps({k: r.to_dict() for k, r in res.items()}, allow_nan=False)  # the report refuses NaN


def test_the_roles_command_prints_roles_with_reasons_and_writes_the_role_map(tmp_path, monkeypatch, capsys):
    import json

    from interp.cli import main

    monkeypatch.setenv("HYPODRIVE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "roles.json"
    assert main(["roles", "--checkpoint", "checkpoints/reference", "--no-causal", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "crossing" in text and "UNRESOLVED" in text and "not measured: --no-causal" in text
    data = json.loads(out.read_text())
    assert set(data["roles"]) == set(R.ROLES) and len(data["heads"]) == 4
    assert data["null"]["networks"] == R.N_NULL and data["stability"]["categories"] == 9
    assert list((tmp_path / "cache" / "roles").glob(f"{data['identity']}-attention-*.json"))  # cached per identity
