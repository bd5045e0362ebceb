"""Episode pictures for the report: a static filmstrip of one recorded episode (its seed and actions replayed in a
rendering env; episodes are deterministic given both), interactive replays with per-head attention and action
values (``interp.replay`` + ``reports.replay``), and attention drawn on built scenes (``attention_scene``)."""
from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np


def _png(frame: np.ndarray, width: int = 240) -> str:
    from PIL import Image

    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    image = image.resize((width, int(image.height * width / image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def episode_filmstrip(env_config: Mapping, seed: int, actions: Sequence[int], action_names: Sequence[str]) -> dict:
    """Figure spec (kind ``filmstrip``) of the episode ``seed`` replayed with ``actions``."""
    from interp.simulation.env import make_env

    env = make_env(env_config, render_mode="rgb_array")
    try:
        env.reset(seed=seed)
        frames, labels = [_png(env.render())], ["start"]
        for t, action in enumerate(actions):
            _, _, terminated, truncated, info = env.step(int(action))
            frames.append(_png(env.render()))
            labels.append(f"t={t + 1} {action_names[int(action)]}" + (" CRASH" if info.get("crashed") else ""))
            if terminated or truncated:
                break
    finally:
        env.close()
    return {"frames_png_base64": frames, "frame_labels": labels, "seed": int(seed)}


# ---------------------------------------------------------------------------------------------- replays and attention scenes
#
# Report figures for the specs: episodes as interactive replays (``interp.replay`` data drawn by
# ``reports.replay``; actions from the same rollout engine the spec ran), and built scenes with each head's
# attention drawn from the ego to every observed vehicle (``attention_scene``). Both are best effort: a picture
# that cannot be made is returned as a note, never decides a spec.


def episode_replay_figures(agent, engine, records, *, limit: int = 2, what: str = "crashed") -> tuple[list[dict], list[str]]:
    """Replay figures of up to ``limit`` records (their seeds, on ``engine``), and notes for any that failed or
    whose replayed actions differ from the record's."""
    from interp.replay import build_replay
    from reports.replay import outcomes_title, replay_figure

    figures, notes = [], []
    for record in list(records)[:limit]:
        try:
            replay = build_replay(agent, record.seed, engine=engine)
        except Exception as err:  # noqa: BLE001 - a missing picture must not decide a spec
            notes.append(f"replay of seed {record.seed} unavailable: {err}")
            continue
        if replay.runs[0].actions != tuple(record.actions):
            notes.append(f"replay of seed {record.seed}: the traced episode's actions differ from the record's")
        figures.append(replay_figure(replay, title=f"{what} episode: {outcomes_title(replay)}",
                                     caption="per head, lines from the ego to each observed vehicle (width and "
                                             "opacity by attention); bars: softmax of the Q-values, taken action in blue"))
    return figures, notes


def discordant_pairs(records, baseline: str, treatment: str) -> list[int]:
    """Seeds where the ``baseline`` condition did not crash and ``treatment`` did (in seed order)."""
    base = {r.seed: r for r in records if r.condition == baseline}
    return sorted(r.seed for r in records if r.condition == treatment and r.crashed
                  and r.seed in base and not base[r.seed].crashed)


def ablation_pair_figures(agent, engine, seeds, head: int, *, limit: int = 1) -> tuple[list[dict], list[str]]:
    """Side-by-side replays (plain agent vs head ``head`` zero-ablated) of the first ``limit`` ``seeds``. The title
    states how each run really ended; the caption calls the pair discordant only if the plain run did not crash
    and the ablated one did."""
    from interp.replay import build_replay
    from reports.replay import outcomes_title, replay_figure

    figures, notes = [], []
    for seed in list(seeds)[:limit]:
        try:
            replay = build_replay(agent, seed, ablate_head=head, engine=engine)
        except Exception as err:  # noqa: BLE001
            notes.append(f"replay of seed {seed} (head {head} ablated) unavailable: {err}")
            continue
        plain, ablated = replay.runs[0], replay.runs[-1]
        kind = ("a discordant pair of the paired ablation test" if not plain.crashed and ablated.crashed
                else "not a discordant pair (that needs the plain run to survive and the ablated run to crash)")
        figures.append(replay_figure(replay, title=outcomes_title(replay),
                                     caption=f"{kind}, side by side; the step where their actions first differ is "
                                             "framed in orange"))
    return figures, notes


def attention_scene_figure(agent, scene, *, title: str | None = None) -> dict:
    """Figure spec (kind ``attention_scene``) of a built scene: positions from its snapshot, one panel per head with
    the ego's attention to each observed vehicle (rows from the builder's ground truth, not from coordinates)."""
    import torch

    with torch.no_grad():
        pattern = agent.model.attention(torch.from_numpy(np.array(scene.observation, np.float32)[None]))[0, :, 0].numpy()

    def shape(name: str, label: str) -> dict:
        vehicle = scene.vehicle(name)
        return {"x": float(vehicle.position[0]), "y": float(vehicle.position[1]), "heading": float(vehicle.heading),
                "length": float(vehicle.LENGTH), "width": float(vehicle.WIDTH), "label": label}

    observed = [name for name, row in scene.rows.items() if name != "ego" and row is not None]
    vehicles = [shape(name, name) for name in observed]
    heads = {f"head {h}": [float(pattern[h, scene.rows[name]]) for name in observed] for h in range(pattern.shape[0])}
    figure = {"kind": "attention_scene", "ego": shape("ego", "ego"), "vehicles": vehicles, "heads": heads,
              "caption": f"nearest crossing vehicle: {scene.nearest_crossing or 'none'}; line width and shade by "
                         "attention weight"}
    if title:
        figure["title"] = title
    return figure
