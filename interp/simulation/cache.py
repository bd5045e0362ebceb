"""On-disk cache of episode records, keyed by everything that determines an episode.

A greedy episode is a pure function of: the agent's weights and model config (its identity), the env config
as the env resolves it (its defaults filled in), the start (seed, and the scene set-up if any), the
intervention (its canonical description), the rollout engine's own version, and the versions of the
libraries that simulate and compute it. The key is a hash of exactly these, so a cache never serves a record
of another checkpoint, config, start, intervention or library version.

Storage is ``diskcache`` (SQLite + files): each record is one committed entry, so a run killed mid-way
leaves only whole records, and several processes (pytest-xdist workers) may read and write at once.
Values are plain dicts of builtins and numpy arrays (no pickled project classes), so a changed record class
cannot unpickle into something stale: bump ``ENGINE_VERSION`` in ``interp.simulation.rollout`` instead. Each entry
carries a SHA-256 of its bytes: bytes overwritten on disk are detected on read, warned about
(``CacheCorruptionWarning``) and recomputed, never served.

Location: ``$HYPODRIVE_CACHE_DIR`` or ``<project root>/.hypodrive-cache`` (gitignored). ``cache=None`` in
the engine (``--no-cache`` on the command line) bypasses it; ``clear()`` empties it.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp.model.config import canonical_json
from interp.errors import ConfigError

ENV_VAR = "HYPODRIVE_CACHE_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # interp/<layer>/<module>.py
DEFAULT_DIR = PROJECT_ROOT / ".hypodrive-cache"
KEY_SCHEMA = 1  # bump if the set of key fields changes
ENTRY_MAGIC = b"hypodrive-record-1\0"  # entry = magic + sha256(payload) + payload (a pickle of the record dict)


class CacheCorruptionWarning(RuntimeWarning):
    """A cache entry's bytes changed on disk (or cannot be read): it is ignored and recomputed."""


def _warn_corrupt(key: str, why: str) -> None:
    import warnings

    warnings.warn(f"rollout cache entry {key[:16]}... is corrupt: {why}; recomputing the episode "
                  "(the new record replaces it)", CacheCorruptionWarning, stacklevel=3)
VERSIONED_LIBRARIES = ("highway-env", "gymnasium", "torch", "numpy")


def default_cache_dir() -> Path:
    """``$HYPODRIVE_CACHE_DIR`` if set, else ``.hypodrive-cache`` in the project root."""
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser() if value else DEFAULT_DIR


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a record depends on (simulation and network numerics)."""
    return {name: importlib.metadata.version(name) for name in VERSIONED_LIBRARIES}


@functools.lru_cache(maxsize=32)
def _resolved_env_json(env_json: str) -> str:
    import importlib

    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    from interp.simulation.env import highway_config

    env_config = json.loads(env_json)
    if "id" not in env_config:
        raise ConfigError("env config has no 'id' (e.g. \"intersection-v0\")")
    importlib.import_module(env_config.get("import_module") or "highway_env")  # registers the env ids
    try:
        env_class = load_env_creator(gym.spec(env_config["id"]).entry_point)
    except gym.error.Error as err:
        raise ConfigError(f"cannot resolve env {env_config['id']!r}: {err}") from None
    # What highway-env's AbstractEnv.__init__ does: the class defaults, then a shallow update with the config.
    resolved = dict(env_class.default_config()) if hasattr(env_class, "default_config") else {}
    resolved.update(highway_config(env_config))
    # Set by the render mode when an env is built (None = decide then); rendering never changes an episode.
    resolved.pop("offscreen_rendering", None)
    # The rl-agents keys that choose the env class are part of its identity too.
    resolved.update({k: env_config[k] for k in ("id", "import_module") if k in env_config})
    return canonical_json(resolved)


def resolved_env_config(env_config: Mapping) -> dict:
    """The env config as the env itself sees it: its class defaults with the given entries over them (the
    shallow update highway-env does), so that spelling out a default does not change a key and every default
    that matters is in it. Computed from the env class without building an env."""
    return json.loads(_resolved_env_json(canonical_json(dict(env_config))))


def record_key(*, agent_identity: str, env_config: Mapping, start: Mapping, intervention: Any,
               engine_version: str, versions: Mapping[str, str] | None = None, simulator: str | None = None) -> str:
    """The cache key of one episode: a SHA-256 over the canonical JSON of everything that determines it.

    ``env_config`` should already be resolved (``resolved_env_config``); ``start`` is e.g. ``{"seed": 3,
    "setup": None}``; ``intervention`` the canonical description (None for the plain agent); ``simulator``
    (``"fast"`` / ``"plain"``) is part of the key only where given: outside the fast simulator's verified
    scope, where the two may differ (inside it the key leaves it out, so either serves the other).
    """
    payload = {
        "schema": KEY_SCHEMA,
        "agent": agent_identity,
        "env": dict(env_config),
        "start": dict(start),
        "intervention": intervention,
        "engine": engine_version,
        "versions": dict(library_versions() if versions is None else versions),
    }
    if simulator is not None:
        payload["simulator"] = simulator
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


class RolloutCache:
    """Episode records on disk (one entry per key). Safe across processes; a failed read is a miss."""

    def __init__(self, directory: str | Path | None = None) -> None:
        import diskcache

        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        # No size limit (records are a few kB); no eviction of entries a spec still needs.
        self._cache = diskcache.Cache(str(self.directory), size_limit=2**40, eviction_policy="none")

    @classmethod
    def default(cls) -> "RolloutCache":
        """The cache at the default location (``$HYPODRIVE_CACHE_DIR`` or ``.hypodrive-cache``)."""
        return cls(default_cache_dir())

    def get(self, key: str) -> dict | None:
        """The record under ``key``, or None (a miss) if absent, stale or corrupt (corrupt: with a warning)."""
        try:
            stored = self._cache.get(key, default=None, retry=True)
        except Exception as err:  # the database itself could not be read for this entry
            _warn_corrupt(key, f"unreadable ({type(err).__name__}: {err})")
            return None
        if stored is None:
            return None
        if not (isinstance(stored, bytes) and stored.startswith(ENTRY_MAGIC)):
            return None  # written by an older hypodrive (a plain dict): recompute rather than trust it
        digest, payload = stored[len(ENTRY_MAGIC):len(ENTRY_MAGIC) + 32], stored[len(ENTRY_MAGIC) + 32:]
        if hashlib.sha256(payload).digest() != digest:
            _warn_corrupt(key, "its checksum does not match its bytes")
            return None
        try:
            value = pickle.loads(payload)  # only bytes this class wrote (the checksum matched)
        except Exception as err:
            _warn_corrupt(key, f"it does not decode ({type(err).__name__})")
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: Mapping) -> None:
        """Store a record with a SHA-256 of its bytes, so that bytes changed on disk are detected on read."""
        payload = pickle.dumps(dict(value), protocol=5)
        self._cache.set(key, ENTRY_MAGIC + hashlib.sha256(payload).digest() + payload, retry=True)

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> int:
        """Remove every record; returns how many there were."""
        return int(self._cache.clear(retry=True))

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> "RolloutCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # picklable by location, e.g. into a worker process
        return {"directory": str(self.directory)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"])


def clear(directory: str | Path | None = None) -> int:
    """Empty the record cache at ``directory`` (default location if None); returns the number removed."""
    directory = Path(directory) if directory is not None else default_cache_dir()
    if not directory.exists():
        return 0
    with RolloutCache(directory) as cache:
        return cache.clear()
