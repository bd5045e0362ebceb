"""A zoo of independently trained agents: the same architecture and training recipe, other seeds and head
counts, so that a claim can be stated for the architecture (in k of n runs) instead of for one run.

``python -m interp zoo train`` trains every member that is not bundled yet, one after another, each resumable
(the trainer writes a resume file every 50 episodes; running the command again continues where it stopped).
``python -m interp zoo bundle`` copies each finished run into ``checkpoints/zoo/<name>/``: weights and configs
only (no optimizer state), its metadata, and its validation figures on the ``validation`` seed range
(``interp.seeds``), disjoint from the held-out, ablation, A/A, calibration and training ranges.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

from interp.atomic import write_files
from interp.simulation.agent import PROJECT_ROOT, load_agent, save_agent
from interp.model.config import load_agent_config, load_env_config

ZOO_DIR = PROJECT_ROOT / "checkpoints" / "zoo"
RUNS_DIR = PROJECT_ROOT / "runs" / "zoo"  # gitignored: resume files, snapshots, optimizer state
BASE_AGENT_CONFIG = PROJECT_ROOT / "checkpoints" / "reference" / "agent_config.json"
ENV_CONFIG = PROJECT_ROOT / "checkpoints" / "reference" / "env_config.json"
EPISODES = 3500  # per member: the reference's own budget, so that the zoo measures the architecture, not a short budget
VALIDATION_EPISODES = 100
SNAPSHOT_EVERY = 250  # episodes between snapshots (for claims over training)


@dataclasses.dataclass(frozen=True)
class Member:
    """One zoo agent: its head count and training seed (network init, exploration, replay, training envs)."""

    heads: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.heads}h-s{self.seed}"


# 8 four-head agents (the main comparison), 2 two-head and 2 eight-head ones, each on its own training seed (seed 0
# is the references'): parameter shapes do not depend on the head count, so one seed would give several members
# the same initial network, and the training env seeds ``(seed + 1) * 1e6 + episode`` would be shared too.
MEMBERS: tuple[Member, ...] = (*(Member(4, s) for s in range(1, 9)), Member(2, 9), Member(2, 10),
                               Member(8, 11), Member(8, 12))


def agent_config(heads: int) -> dict:
    """The reference's agent config with another head count (everything else the same recipe)."""
    config = copy.deepcopy(load_agent_config(BASE_AGENT_CONFIG))
    config["model"]["attention_layer"]["heads"] = heads
    return config


def train(members: tuple[Member, ...] = MEMBERS, *, episodes: int = EPISODES, workers: int | None = 1,
          progress: bool = True) -> list[str]:
    """Train every member not yet bundled (resuming a run in progress); returns the names trained."""
    from interp.training.train import TrainSettings, Trainer

    done = []
    for member in members:
        if is_bundled(member, episodes) or not claim(member):
            continue  # bundled already at this budget, or another process is training it
        out = RUNS_DIR / member.name
        settings = TrainSettings(agent_config=agent_config(member.heads), env_config=load_env_config(ENV_CONFIG),
                                 episodes=episodes, seed=member.seed, out=out, workers=workers, slots=4,
                                 save_every=SNAPSHOT_EVERY,
                                 command=f"python -m interp zoo train  # member {member.name}, {episodes} episodes")
        try:
            Trainer(settings).run(progress=progress)
            bundle(member)
        finally:
            (RUNS_DIR / f"{member.name}.lock").unlink(missing_ok=True)
        done.append(member.name)
    return done


def is_bundled(member: Member, episodes: int = EPISODES) -> bool:
    """Whether ``checkpoints/zoo/<name>`` holds this member trained to ``episodes`` (an older, shorter bundle of
    the same name is trained again and replaced)."""
    meta = ZOO_DIR / member.name / "metadata.json"
    try:
        return (ZOO_DIR / member.name / "agent.pt").is_file() and json.loads(meta.read_text())["episodes"] >= episodes
    except (OSError, ValueError, KeyError):
        return False


def claim(member: Member) -> bool:
    """Take the member for this process (a lock file holding our pid), so that several ``zoo train`` processes
    can share the list; a lock whose process is gone is taken over (that run resumes from its resume file)."""
    import os

    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    lock = RUNS_DIR / f"{member.name}.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _locked(member):
                return False  # alive: someone else trains it
            lock.unlink(missing_ok=True)  # stale: its process died
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


def bundle(member: Member, *, validation_episodes: int = VALIDATION_EPISODES) -> Path:
    """Weights + configs + metadata + validation figures of a finished run into ``checkpoints/zoo/<name>``."""
    from interp.training.validation import validation_figures

    run = RUNS_DIR / member.name
    agent = load_agent(run / "agent.pt")
    out = ZOO_DIR / member.name
    validation = validation_figures(agent, validation_episodes)
    meta = {**agent.metadata, "identity": agent.identity, "zoo_member": member.name, "heads": member.heads,
            "train_seed": member.seed, "validation": validation}
    save_agent(agent, out / "agent.pt", metadata=meta)  # no optimizer state: small, and nothing to resume
    history = run / "history.json"
    records = {"training_history.json": history.read_text()} if history.is_file() else {}
    write_files(out, {**records, "metadata.json": json.dumps(meta, indent=2) + "\n"}, what="the member's records")
    return out


def status() -> list[dict]:
    """One row per member: ``bundled`` (trained to ``EPISODES`` and bundled), ``training`` (a run folder with
    episodes done; a live lock means a process is on it now) or ``not started`` -- what ``zoo train`` has left."""
    rows = []
    for member in MEMBERS:
        row = {"member": member.name, "heads": member.heads, "seed": member.seed, "state": "not started",
               "episodes": 0, "of": EPISODES}
        if is_bundled(member):
            meta = json.loads((ZOO_DIR / member.name / "metadata.json").read_text())
            row.update(state="bundled", episodes=meta["episodes"], identity=meta.get("identity"),
                       validation_collision_rate=meta.get("validation", {}).get("collision_rate"))
        elif (RUNS_DIR / member.name).is_dir():
            try:
                row["episodes"] = len(json.loads((RUNS_DIR / member.name / "history.json").read_text()))
            except (OSError, ValueError):
                pass  # started, no history written yet
            row["state"] = "training" if _locked(member) else "stopped (resumable)"
        rows.append(row)
    return rows


def _locked(member: Member) -> bool:
    """Whether a live process holds the member's lock file (a lock whose pid is gone, unreadable or missing is not
    held)."""
    import os

    try:
        os.kill(int((RUNS_DIR / f"{member.name}.lock").read_text() or 0), 0)
        return True
    except (ProcessLookupError, FileNotFoundError, ValueError):
        return False


def bundled() -> list[Path]:
    """The bundled zoo members' folders, in ``MEMBERS`` order."""
    return [ZOO_DIR / m.name for m in MEMBERS if (ZOO_DIR / m.name / "agent.pt").is_file()]
