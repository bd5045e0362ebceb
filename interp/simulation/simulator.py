"""Which simulator an env config runs on: ``"fast"`` (``interp.simulation.fastsim``) or ``"plain"`` highway-env.

Why decided once, from the config, in the process that starts the workers: every worker then builds the same
simulator, the records can say which one produced them, the cache key can name it where the two may differ,
and a config outside the fast simulator's verified scope gets one warning in that process, not one per worker.
"""
from __future__ import annotations

from collections.abc import Mapping

from interp.simulation.cache import resolved_env_config
from interp.simulation.fastsim import scope
from interp.simulation.fastsim.installation import VERIFIED_VERSIONS, highway_env_version

FAST, PLAIN = "fast", "plain"
FAST_ENV_IDS = ("intersection-v0",)  # the ids whose env class the fast simulator specialises (IntersectionEnv)


def outside_scope(env_config: Mapping) -> list[str]:
    """What keeps ``env_config`` from the fast simulator (empty: nothing): another highway-env version,
    another env, or config entries outside ``fastsim.scope.VERIFIED``."""
    version = highway_env_version()
    if version not in VERIFIED_VERSIONS:
        return [f"highway-env {version} (verified: {', '.join(VERIFIED_VERSIONS)})"]
    if env_config.get("id") not in FAST_ENV_IDS or (env_config.get("import_module") or "highway_env") != "highway_env":
        return [f"id={env_config.get('id')!r} (the fast simulator supports {', '.join(FAST_ENV_IDS)})"]
    return scope.outside(resolved_env_config(env_config))


def in_verified_scope(env_config: Mapping) -> bool:
    """Whether the fast and the plain simulator are tested to give the same episodes on ``env_config``."""
    return not outside_scope(env_config)


def simulator_for(env_config: Mapping, fast_sim: bool) -> str:
    """``FAST`` where ``fast_sim`` is asked for and ``env_config`` is inside the verified scope; else ``PLAIN``,
    with one warning (per process and set of keys) naming what is outside it."""
    if not fast_sim:
        return PLAIN
    entries = outside_scope(env_config)
    if entries:
        scope.warn_once(entries, stacklevel=3)
        return PLAIN
    return FAST
