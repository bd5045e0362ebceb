"""Planted weaknesses for the fuzzer to find: agents whose input layer is edited so they misread some vehicles.

``ignoring_approach`` makes an agent blind to a whole approach arm (a frequent failure); ``blind_spot`` makes it
misjudge the distance of vehicles in one small region (one arm, a distance band, a speed range), with the error
fading smoothly away from that region, so it fails rarely and its score rises gradually towards the region
(``specs/fuzzing/rare.py`` measures how much sooner guided search finds it than random search)."""
from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import Any

from fixtures.builder import SceneBuilder


def arm_box(builder: SceneBuilder, approach: str, margin: float = 4.5) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) in metres around an arm's approach lane (both of its lanes: ``margin`` is about
    one lane width either side of the approach lane's centre line)."""
    path = builder.geometry.vehicle_path(approach, "straight")
    lane = path.points[path.s <= path.entry_s]
    return (float(lane[:, 0].min() - margin), float(lane[:, 0].max() + margin),
            float(lane[:, 1].min() - margin), float(lane[:, 1].max() + margin))


def arm_direction(builder: SceneBuilder, approach: str) -> float:
    """The arm's direction seen from the junction centre (the absolute frame's origin), in degrees."""
    x_lo, x_hi, y_lo, y_hi = arm_box(builder, approach)
    return math.degrees(math.atan2((y_lo + y_hi) / 2, (x_lo + x_hi) / 2))


class _Frame:
    """The observation's columns and their metres <-> network-input conversion (absolute coordinates only)."""

    def __init__(self, builder: SceneBuilder, who: str):
        from interp.errors import ConfigError

        obs_type = builder.core.observation_type
        if not obs_type.absolute:
            raise ConfigError(f"{who} reads positions from x/y: it needs \"absolute\": true in the observation")
        self.features = list(obs_type.features)
        self.normalize = bool(obs_type.normalize)
        self.ranges = dict(obs_type.features_range) if self.normalize else {}

    def column(self, name: str) -> int:
        return self.features.index(name)

    def metres(self, column, name: str):
        """Network input -> metres (m/s for vx, vy)."""
        if not self.normalize:
            return column
        low, high = self.ranges[name]
        return (column + 1.0) / 2.0 * (high - low) + low

    def normalised(self, column, name: str):
        """Metres (m/s) -> network input (the inverse of ``metres``; no clipping, the network reads any value)."""
        if not self.normalize:
            return column
        low, high = self.ranges[name]
        return (column - low) / (high - low) * 2.0 - 1.0


def _with_hooks(agent, edits: dict[str, Callable[[Any], Any]], weakness: str, note: str):
    """A copy of ``agent`` whose hook points (``hook_input``, ``hook_q``, ...) pass ``edit(value)`` on: permanent
    forward hooks (the weights stay the reference's or the planted network's; what flows through is changed)."""
    model = copy.deepcopy(agent.model)
    for name, edit in edits.items():
        model.get_submodule(name).register_forward_hook(lambda _module, _inputs, value, edit=edit: edit(value))
    model.config = {**model.config, "planted_weakness": weakness}
    return agent.with_model(model.eval(), note)


def ignoring_approach(agent, approach: str, builder: SceneBuilder):
    """A copy of ``agent`` blind to vehicles on the ``approach`` arm: a permanent hook on ``hook_input`` marks rows
    whose x/y lie on that arm absent (presence 0), so attention and Q-values ignore them. A planted weakness for
    showing that the fuzzer finds and shrinks a failure; needs an absolute-coordinates observation."""
    import torch

    frame = _Frame(builder, "ignoring_approach")
    ix, iy, ip = frame.column("x"), frame.column("y"), frame.column("presence")
    x_lo, x_hi, y_lo, y_hi = arm_box(builder, approach)

    def hide(x: torch.Tensor) -> torch.Tensor:
        px, py = frame.metres(x[..., ix], "x"), frame.metres(x[..., iy], "y")
        on_arm = (px >= x_lo) & (px <= x_hi) & (py >= y_lo) & (py <= y_hi)
        on_arm[:, 0] = False  # the ego's own row is never hidden
        hidden = x.clone()
        hidden[..., ip] = torch.where(on_arm, torch.zeros_like(x[..., ip]), x[..., ip])
        return hidden

    return _with_hooks(agent, {"hook_input": hide}, f"ignores the {approach} arm",
                       f"ignores vehicles on the {approach} arm")


def _outside(value, low: float, high: float):
    """How far ``value`` lies outside [low, high] (0 inside)."""
    import torch

    return torch.clamp(low - value, min=0.0) + torch.clamp(value - high, min=0.0)


@dataclasses.dataclass(frozen=True)
class BlindSpot:
    """A small region of the road where a planted weakness acts: vehicles on the ``approach`` arm (within
    ``half_angle`` degrees of its direction from the centre), ``distance`` m from the junction centre, driving at
    ``speed`` m/s; ``weight`` is 1 there and fades with a heavy tail of scale ``softness`` (degrees, m, m/s)
    outside, so the weakness never switches off abruptly. ``blind_spot`` sees such a vehicle ``push`` m farther
    from the centre than it is; ``spurious_go`` takes it as a cue to keep going."""

    approach: str = "right"
    distance: tuple[float, float] = (22.0, 23.0)
    speed: tuple[float, float] = (6.9, 7.1)
    half_angle: float = 20.0
    softness: tuple[float, float, float] = (10.0, 1.0, 0.25)
    push: float = 100.0

    def describe(self) -> str:
        return (f"{self.approach} arm, {self.distance[0]:g}-{self.distance[1]:g} m from the centre, "
                f"{self.speed[0]:g}-{self.speed[1]:g} m/s")

    def weight(self, x, y, vx, vy, direction: float):
        """[0, 1] per row from positions (m) and velocities (m/s): 1 inside the region, 1 / sqrt(1 + D^2) outside
        it, D the distance to it in units of ``softness`` (angle, distance and speed combined): smooth at the edge
        and a heavy tail (~ 1 / D), so the weight still changes far from the region, as real weaknesses fade
        rather than switch off."""
        import torch

        angle = torch.rad2deg(torch.atan2(y, x)) - direction
        angle = torch.abs(torch.remainder(angle + 180.0, 360.0) - 180.0)  # angular distance to the arm, [0, 180]
        d2 = ((_outside(angle, 0.0, self.half_angle) / self.softness[0]) ** 2
              + (_outside(torch.hypot(x, y), *self.distance) / self.softness[1]) ** 2
              + (_outside(torch.hypot(vx, vy), *self.speed) / self.softness[2]) ** 2)
        return torch.rsqrt(1.0 + d2)


def _spot_weights(frame: _Frame, builder: SceneBuilder, spot: BlindSpot) -> Callable[[Any], Any]:
    """observation [B, N, F] -> [B, N] ``spot.weight`` of each present row, 0 for the ego's and absent rows."""
    ix, iy, ivx, ivy, ip = (frame.column(n) for n in ("x", "y", "vx", "vy", "presence"))
    direction = arm_direction(builder, spot.approach)

    def weights(x):
        px, py = frame.metres(x[..., ix], "x"), frame.metres(x[..., iy], "y")
        vx, vy = frame.metres(x[..., ivx], "vx"), frame.metres(x[..., ivy], "vy")
        w = spot.weight(px, py, vx, vy, direction) * (x[..., ip] >= 0.5)
        w[:, 0] = 0.0  # the ego's own row
        return w

    return weights


def blind_spot(agent, builder: SceneBuilder, spot: BlindSpot = BlindSpot()):
    """A copy of ``agent`` that sees each vehicle ``spot.push * w`` m farther from the junction centre (along the
    line from the centre) than it is, ``w = spot.weight(...)``: a perception error confined to one small region
    of (side, distance, speed) that fades smoothly outside it. On an agent that slows for near vehicles this is a
    rare failure (it keeps its speed for a vehicle it places out of reach) with a score that degrades towards it."""
    import torch

    frame = _Frame(builder, "blind_spot")
    ix, iy = frame.column("x"), frame.column("y")
    weights = _spot_weights(frame, builder, spot)

    def misjudge(x: torch.Tensor) -> torch.Tensor:
        px, py = frame.metres(x[..., ix], "x"), frame.metres(x[..., iy], "y")
        w = weights(x)
        scale = 1.0 + spot.push * w / torch.clamp(torch.hypot(px, py), min=1e-3)  # radial shift by push * w
        seen = x.clone()
        seen[..., ix] = frame.normalised(px * scale, "x")
        seen[..., iy] = frame.normalised(py * scale, "y")
        return seen

    return _with_hooks(agent, {"hook_input": misjudge}, f"blind spot: {spot.describe()}",
                            f"misjudges the distance of vehicles in a blind spot ({spot.describe()})")


def spurious_go(agent, builder: SceneBuilder, spot: BlindSpot = BlindSpot(), gain: float = 0.8, action: int = 0):
    """A copy of ``agent`` whose Q-value of ``action`` (SLOWER) drops by ``gain * w``, ``w`` the largest
    ``spot.weight`` over the observed vehicles: a spurious "go" cue (a car in that region of side, distance and
    speed tells it to keep going) that fades smoothly away from the region. Unlike ``blind_spot`` it adds to the
    keep-speed margin whatever else is on the road, so its score leads towards the region from more of the space."""
    import torch

    weights = _spot_weights(_Frame(builder, "spurious_go"), builder, spot)
    seen: dict[str, torch.Tensor] = {}

    def read(x: torch.Tensor) -> torch.Tensor:
        seen["w"] = weights(x).max(dim=-1).values
        return x

    def lower(q: torch.Tensor) -> torch.Tensor:
        q = q.clone()
        q[:, action] = q[:, action] - gain * seen["w"]
        return q

    return _with_hooks(agent, {"hook_input": read, "hook_q": lower}, f"spurious go cue: {spot.describe()}",
                       f"keeps going for vehicles in one region ({spot.describe()})")


def with_weight(agent, parameter: str, index: tuple[int, ...], value: float, note: str):
    """A copy of ``agent`` with one weight set, e.g. tests/planted.py's network made *cautious* (its SLOWER
    Q-value raised by the planted closeness neuron), so that it satisfies the crossing-first property everywhere
    and a planted weakness is the only way it fails."""
    import torch

    model = copy.deepcopy(agent.model)
    with torch.no_grad():
        model.get_parameter(parameter)[index] = value
    model.config = {**model.config, "edited_weight": f"{parameter}{list(index)} = {value:g}"}
    return agent.with_model(model.eval(), note)
