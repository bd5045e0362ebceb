"""The observation's feature layout: names, normalisation ranges, and the map back to metres and m/s.

The probes work on normalised Kinematics observations ``[B, N, F]`` (presence 0/1; x, y, vx, vy mapped
linearly from ``features_range`` to [-1, 1] and clipped, as highway-env's ``normalize_obs`` does; cos_h and
sin_h as they are). The feature list is read from the env config, never written out again here.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import numpy as np

from interp.errors import ConfigError

# Features the probes treat as one angle rather than two numbers (cos_h^2 + sin_h^2 = 1).
HEADING_FEATURES = ("cos_h", "sin_h")


@dataclasses.dataclass(frozen=True)
class FeatureLayout:
    """Which column holds which feature, and each normalised feature's physical range."""

    names: tuple[str, ...]
    ranges: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_env_config(cls, env_config: Mapping) -> "FeatureLayout":
        obs = env_config.get("observation", {})
        names = tuple(obs.get("features", ()))
        if "presence" not in names:
            raise ConfigError(
                f"the observation features {list(names)} have no 'presence' column; the ego-attention network "
                "masks rows by presence, so the env config's observation.features must include it"
            )
        ranges = {k: (float(v[0]), float(v[1])) for k, v in obs.get("features_range", {}).items()}
        return cls(names=names, ranges=ranges)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(f"feature {name!r} is not in this observation's features {list(self.names)}") from None

    @property
    def presence(self) -> int:
        return self.index("presence")

    @property
    def continuous(self) -> tuple[int, ...]:
        """Columns a gradient can move: every feature but presence (a hard 0.5 threshold inside the model)."""
        return tuple(i for i, name in enumerate(self.names) if name != "presence")

    @property
    def continuous_names(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in self.continuous)

    @property
    def has_heading(self) -> bool:
        return all(name in self.names for name in HEADING_FEATURES)

    def physical_range(self, name: str) -> tuple[float, float]:
        if name not in self.ranges:
            raise ConfigError(
                f"feature {name!r} has no features_range in the env config (it has {sorted(self.ranges)}); "
                "set observation.features_range so normalised values can be mapped back to physical units"
            )
        return self.ranges[name]

    def to_physical(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Normalised ``[..., F]`` -> {feature: physical value}; cos_h/sin_h also give ``heading`` in radians.

        Values that were clipped at +-1 by the env map back to the range's ends (the clip loses the rest).
        """
        obs = np.asarray(obs, dtype=np.float64)
        out: dict[str, np.ndarray] = {}
        for i, name in enumerate(self.names):
            if name in self.ranges:
                lo, hi = self.ranges[name]
                out[name] = lo + (obs[..., i] + 1.0) * (hi - lo) / 2.0
            else:
                out[name] = obs[..., i]
        if self.has_heading:
            out["heading"] = np.arctan2(obs[..., self.index("sin_h")], obs[..., self.index("cos_h")])
        return out

    def normalise(self, name: str, value: float | np.ndarray) -> float | np.ndarray:
        """Physical -> normalised, clipped to [-1, 1] like the env's observation."""
        lo, hi = self.physical_range(name)
        return np.clip(-1.0 + 2.0 * (np.asarray(value, dtype=np.float64) - lo) / (hi - lo), -1.0, 1.0)


@functools.lru_cache(maxsize=1)
def reference_layout() -> FeatureLayout:
    """The layout of the bundled reference env config (the default of every probe)."""
    from pathlib import Path

    from interp.model.config import load_env_config

    reference_env = Path(__file__).resolve().parents[2] / "checkpoints" / "reference" / "env_config.json"
    return FeatureLayout.from_env_config(load_env_config(reference_env))
