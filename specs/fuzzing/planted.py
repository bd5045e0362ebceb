"""A planted weakness for the fuzzer to find: an agent edited to ignore the vehicles of one approach arm."""
from __future__ import annotations

from fixtures.builder import SceneBuilder


def arm_box(builder: SceneBuilder, approach: str, margin: float = 4.5) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) in metres around an arm's approach lane (both of its lanes: ``margin`` is about
    one lane width either side of the approach lane's centre line)."""
    path = builder.geometry.vehicle_path(approach, "straight")
    lane = path.points[path.s <= path.entry_s]
    return (float(lane[:, 0].min() - margin), float(lane[:, 0].max() + margin),
            float(lane[:, 1].min() - margin), float(lane[:, 1].max() + margin))


def ignoring_approach(agent, approach: str, builder: SceneBuilder):
    """A copy of ``agent`` blind to vehicles on the ``approach`` arm: a permanent hook on ``hook_input`` marks rows
    whose x/y lie on that arm absent (presence 0), so attention and Q-values ignore them. A planted weakness for
    showing that the fuzzer finds and shrinks a failure; needs an absolute-coordinates observation."""
    import copy

    import torch

    from interp.errors import ConfigError

    obs_type = builder.core.observation_type
    if not obs_type.absolute:
        raise ConfigError("ignoring_approach reads positions from x/y: it needs \"absolute\": true in the observation")
    features = list(obs_type.features)
    ix, iy, ip = features.index("x"), features.index("y"), features.index("presence")
    x_lo, x_hi, y_lo, y_hi = arm_box(builder, approach)
    ranges = obs_type.features_range if obs_type.normalize else {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}

    def metres(column: torch.Tensor, name: str) -> torch.Tensor:
        if not obs_type.normalize:
            return column
        low, high = ranges[name]
        return (column + 1.0) / 2.0 * (high - low) + low

    def hide(_module, _inputs, x: torch.Tensor) -> torch.Tensor:
        px, py = metres(x[..., ix], "x"), metres(x[..., iy], "y")
        on_arm = (px >= x_lo) & (px <= x_hi) & (py >= y_lo) & (py <= y_hi)
        on_arm[:, 0] = False  # the ego's own row is never hidden
        hidden = x.clone()
        hidden[..., ip] = torch.where(on_arm, torch.zeros_like(x[..., ip]), x[..., ip])
        return hidden

    model = copy.deepcopy(agent.model)
    model.hook_input.register_forward_hook(hide)
    model.config = {**model.config, "planted_weakness": f"ignores the {approach} arm"}
    return agent.with_model(model.eval(), f"ignores vehicles on the {approach} arm")
