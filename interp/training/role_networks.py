"""Short training runs of an agent's architecture that the head-role rule is checked against or calibrated on:
networks trained a few episodes, or with shuffled rewards, or with gamma = 0 (the target is then the shuffled
reward alone, with no path from an episode's outcome to the target).

One function, so that the rate tests (``tests/test_roles.py``), the benchmarks and the trained role null
(``benchmarks/role_trained_null.py``) train and cache such networks the same way; a checkpoint is kept in the cache
folder, so a rerun trains nothing and an interrupted job resumes where it stopped."""
from __future__ import annotations

from pathlib import Path


def network_folder(cache: Path, n_heads: int, seed: int, episodes: int, shuffle_rewards: bool,
                   gamma: float | None = None, episode_seed_base: int | None = None) -> Path:
    """Where the run is cached; the names of runs made before ``gamma`` / ``episode_seed_base`` existed are kept."""
    name = f"{n_heads}h-seed{seed}-{episodes}ep{'-shuffled-rewards' if shuffle_rewards else ''}"
    if gamma is not None:
        name += f"-gamma{gamma:g}"
    if episode_seed_base is not None:
        name += f"-env{episode_seed_base}"
    return cache / "role-check-networks" / name


def trained_network(agent, seed: int, episodes: int, *, shuffle_rewards: bool, gamma: float | None = None,
                    episode_seed_base: int | None = None, cache: Path | None = None):
    """``agent``'s architecture trained by the real trainer (one core, 4 slots) from training seed ``seed``:
    ``episodes`` episodes, rewards shuffled within each replay sample if asked, ``gamma`` overriding the agent
    config's discount, env seeds ``episode_seed_base + k`` if given (else the trainer's rule). Returns the loaded
    agent; the run's metadata is checked against what was asked."""
    from interp.simulation.agent import load_agent
    from interp.simulation.cache import default_cache_dir
    from interp.training.train import Trainer, TrainSettings

    out = network_folder(cache or default_cache_dir(), agent.n_heads, seed, episodes, shuffle_rewards, gamma,
                         episode_seed_base)
    config = agent.agent_config if gamma is None else {**agent.agent_config, "gamma": gamma}
    if not (out / "agent.pt").exists():
        Trainer(TrainSettings(agent_config=config, env_config=agent.env_config, episodes=episodes, seed=seed, out=out,
                              workers=0, slots=4, save_every=10 ** 6, shuffle_rewards=shuffle_rewards,
                              episode_seed_base=episode_seed_base)).run(progress=False)
    trained = load_agent(out / "agent.pt")
    meta = trained.metadata
    if meta.get("shuffle_rewards", False) is not shuffle_rewards or meta["episodes"] != episodes:
        raise RuntimeError(f"{out} holds another run (shuffle_rewards {meta.get('shuffle_rewards')}, episodes "
                           f"{meta['episodes']}); delete the folder to retrain it")
    return trained
