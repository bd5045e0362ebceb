"""Metadata of a spec run for the report: what was tested, with what, where."""
from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path


def _git_commit(root: Path) -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ["torch", "highway-env", "gymnasium", "numpy", "captum", "hypothesis", "scipy", "statsmodels"]
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_metadata(config, state) -> dict:
    """``state``: the plugin's ``Session``."""
    agent = state.agent
    root = Path(str(config.rootpath))
    return {
        "checkpoint": agent.describe() if agent is not None else None,
        "agent_config": agent.agent_config if agent is not None else None,
        "env_config": agent.env_config if agent is not None else None,
        "profile": state.budget.name,
        "head_roles": state.head_roles,
        "seeds": state.seeds,
        "versions": library_versions(),
        "git_commit": _git_commit(root),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(config.invocation_params.args),
    }
