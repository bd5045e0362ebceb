"""Replays (``python -m interp replay``): the episode ``evaluate`` counted, drawn frame by frame.

On the bundled reference agent, seed 5 crashes (6 steps) and seed 0 arrives (9 steps), both checked here so
that a change of agent or engine that moves them shows up as a failure naming the seed.
"""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from PIL import Image

from interp import cli
from interp.replay import ReplayMismatch, build_replay, divergence_step, replay_run, softmax
from interp.simulation.rollout import EpisodeTrace
from reports.replay import draw_frames, frame_captions, replay_figure, write_replay
from tests.planted import ROOT
from tests.reference_fixtures import agent, engine  # noqa: F401  (module fixtures)

REFERENCE = ROOT / "checkpoints" / "reference"
CRASH_SEED, SAFE_SEED = 5, 0

@pytest.fixture(scope="module")
def replays(agent, engine):
    return {seed: build_replay(agent, seed, engine=engine) for seed in (CRASH_SEED, SAFE_SEED)}

def _evaluate_json(tmp_path, seed: int) -> dict:
    out = tmp_path / f"evaluate-{seed}.json"
    rc = cli.main(["evaluate", "--checkpoint", str(REFERENCE), "--seed", str(seed), "--episodes", "1", "--workers", "0",
                   "--no-cache", "--no-progress", "--json", str(out)])
    assert rc == 0
    (episode,) = json.loads(out.read_text())["episodes"]
    return episode

@pytest.mark.parametrize("seed, crashes", [(CRASH_SEED, True), (SAFE_SEED, False)])
def test_replay_actions_equal_the_evaluate_records(tmp_path, seed, crashes):
    """The replay CLI shows the very episode `evaluate --json` recorded for the seed (both simulated afresh)."""
    record = _evaluate_json(tmp_path, seed)
    assert record["crashed"] is crashes, f"seed {seed} no longer {'crashes' if crashes else 'survives'}; pick another"
    gif, data = tmp_path / "r.gif", tmp_path / "r.json"
    assert cli.main(["replay", "--checkpoint", str(REFERENCE), "--seed", str(seed), "--no-cache",
                     "--out", str(gif), "--json", str(data)]) == 0
    replay = json.loads(data.read_text())
    assert replay["actions"] == record["actions"]
    assert (replay["crashed"], replay["arrived"], replay["length"]) == (record["crashed"], record["arrived"], record["length"])
    assert [s["action"] for s in replay["steps"]] == record["actions"]
    assert replay["n_frames"] == record["length"] + 1
    with Image.open(gif) as image:
        assert image.n_frames == record["length"] + 1

def test_side_by_side_replay_equals_the_evaluate_records_of_both_conditions(tmp_path):
    """Seed 3: the plain agent arrives, with head 1 ablated it crashes (a discordant pair); both runs of the
    replay are the episodes `evaluate --ablate-head 1 --compare` recorded."""
    out = tmp_path / "evaluate.json"
    assert cli.main(["evaluate", "--checkpoint", str(REFERENCE), "--seed", "3", "--episodes", "1", "--workers", "0",
                     "--ablate-head", "1", "--compare", "--no-cache", "--no-progress", "--json", str(out)]) == 0
    records = {e["condition"]: e for e in json.loads(out.read_text())["episodes"]}
    data = tmp_path / "pair.json"
    assert cli.main(["replay", "--checkpoint", str(REFERENCE), "--seed", "3", "--ablate-head", "1", "--no-cache",
                     "--out", str(tmp_path / "pair.mp4"), "--json", str(data)]) == 0
    replay = json.loads(data.read_text())
    for run in replay["runs"]:
        record = records[run["condition"]]
        assert (run["actions"], run["crashed"], run["arrived"]) == (record["actions"], record["crashed"], record["arrived"])
    assert replay["divergence"] == divergence_step(*(r["actions"] for r in replay["runs"]))
    assert replay["n_frames"] == max(r["length"] for r in replay["runs"]) + 1

def test_json_holds_q_values_softmax_and_attention_per_step(replays):
    data = replays[CRASH_SEED].to_dict()
    run = replays[CRASH_SEED].runs[0]
    assert data["action_names"] == ["SLOWER", "IDLE", "FASTER"]
    assert len(data["steps"]) == data["length"] == run.length
    for step in data["steps"]:
        assert len(step["q"]) == len(step["probs"]) == 3
        assert np.isclose(sum(step["probs"]), 1.0) and np.argmax(step["probs"]) == np.argmax(step["q"])
        assert len(step["attention"]) == run.n_heads and all(len(h) == len(step["rows"]) for h in step["attention"])
        for head in step["attention_by_vehicle"]:  # attention over present rows sums to one (absent rows get none)
            assert np.isclose(sum(head.values()), 1.0, atol=1e-5)
    assert data["crashed"] is True and data["arrived"] is False
    json.dumps(data)  # plain JSON

def test_frames_find_each_recorded_vehicle_where_its_observation_row_puts_it(replays):
    """The recorded row identity, not coordinates, finds the vehicles; here the coordinates confirm it: the
    vehicle behind each row sits where that row's (absolute, /100) x and y say."""
    for replay in replays.values():
        run = replay.runs[0]
        checked = 0
        for step, frame in zip(run.steps, run.frames):
            obs = step.obs
            for row, vid in enumerate(step.rows):
                if vid < 0 or abs(obs[row, 1]) >= 1 or abs(obs[row, 2]) >= 1:  # empty or clipped at the range
                    continue
                x, y = frame.positions[int(vid)]
                assert abs(x / 100 - obs[row, 1]) < 1e-4 and abs(y / 100 - obs[row, 2]) < 1e-4
                assert int(vid) in frame.pixels
                checked += 1
        assert checked >= run.length * 2

def test_a_replay_has_steps_plus_one_frames_in_every_format(replays, tmp_path):
    import imageio.v3 as iio

    for seed, replay in replays.items():
        run = replay.runs[0]
        frames = draw_frames(replay)
        assert len(frames) == run.length + 1 == replay.n_frames
        assert all(f.shape == frames[0].shape and f.dtype == np.uint8 for f in frames)
        assert frames[0].std() > 20, "frames must show a rendered scene, not a blank picture"
        for suffix in (".gif", ".mp4", ".html"):
            path = write_replay(replay, tmp_path / f"{seed}{suffix}", frames=frames)
            assert path.stat().st_size > 1000
        with Image.open(tmp_path / f"{seed}.gif") as gif:
            assert gif.n_frames == run.length + 1
        video = iio.imread(tmp_path / f"{seed}.mp4", index=None)
        assert video.shape[0] == run.length + 1
        page = (tmp_path / f"{seed}.html").read_text()
        assert f'max="{run.length}"' in page and page.count('src="data:image/png;base64,') == 1
        payload = json.loads(re.search(r'<script type="application/json">(.*?)</script>', page, re.S).group(1))
        assert len(payload["frames"]) == len(payload["labels"]) == run.length + 1
        assert "http" not in page.replace("http-equiv", ""), "the page must be self-contained"

def test_crash_and_arrival_are_marked(replays):
    crash, safe = replays[CRASH_SEED], replays[SAFE_SEED]
    assert crash.runs[0].frames[-1].crashed and not any(f.crashed for f in crash.runs[0].frames[:-1])
    assert safe.runs[0].frames[-1].arrived
    assert "CRASHED" in frame_captions(crash)[-1] and "ARRIVED" in frame_captions(safe)[-1]
    last, before = draw_frames(crash)[-1], draw_frames(crash)[-2]
    red = lambda f: int(((f[..., 0] > 180) & (f[..., 1] < 60) & (f[..., 2] < 60)).sum())  # noqa: E731
    assert red(last) > red(before) + 2000, "the crash frame carries a red frame and banner"

def test_ablation_side_by_side_highlights_the_divergence(agent, engine, replays):
    replay = build_replay(agent, CRASH_SEED, ablate_head=1, engine=engine)
    plain, ablated = replay.runs
    assert plain.actions == replays[CRASH_SEED].runs[0].actions
    assert ablated.ablated_heads == (1,) and ablated.condition == "ablate_heads=1"
    assert replay.divergence == divergence_step(plain.actions, ablated.actions)
    frames = draw_frames(replay)
    assert len(frames) == max(plain.length, ablated.length) + 1
    assert frames[0].shape[1] > 2 * 500, "two panels side by side"
    if replay.divergence is not None:
        orange = lambda f: int(((f[..., 0] > 220) & (abs(f[..., 1].astype(int) - 88) < 20) & (f[..., 2] < 40)).sum())  # noqa: E731
        k = replay.divergence
        assert orange(frames[k]) > 2000 and orange(frames[k]) > orange(frames[min(k + 1, len(frames) - 1)])
        assert "diverge" in frame_captions(replay)[k]

def test_divergence_step():
    assert divergence_step([1, 2, 2], [1, 2, 2]) is None
    assert divergence_step([1, 2, 2], [1, 0, 2]) == 1
    assert divergence_step([1, 2], [1, 2, 0]) == 2
    assert np.allclose(softmax(np.array([0.0, 0.0])), [0.5, 0.5])

def test_a_re_simulation_that_departs_from_the_trace_fails_loudly(agent, engine):
    """If the re-simulated observation is not the recorded one, the replay refuses to draw another episode."""
    (record,) = engine.run(agent, [CRASH_SEED], trace=True)
    tampered_obs = record.trace.obs.copy()
    tampered_obs[2, 1, 1] += 1e-3
    bad = dataclasses.replace(record, trace=dataclasses.replace(record.trace, obs=tampered_obs))
    with pytest.raises(ReplayMismatch, match="step 2"):
        replay_run(bad, agent.env_config, action_names=agent.action_names, render=False)
    rows = record.trace.rows.copy()
    rows[1] = np.roll(rows[1], 1)
    bad = dataclasses.replace(record, trace=EpisodeTrace(obs=record.trace.obs, q=record.trace.q,
                                                         attention=record.trace.attention, rows=rows))
    with pytest.raises(ReplayMismatch, match="row identity"):
        replay_run(bad, agent.env_config, action_names=agent.action_names, render=False)

def test_replay_figure_for_the_report(replays):
    from reports.schema import validate_figure

    figure = replay_figure(replays[CRASH_SEED], title="a crashed episode")
    validate_figure(figure)
    assert figure["kind"] == "replay" and len(figure["frames_png_base64"]) == replays[CRASH_SEED].n_frames

def test_cli_refuses_unknown_formats_and_both_comparisons(tmp_path, capsys):
    assert cli.main(["replay", "--checkpoint", str(REFERENCE), "--seed", "0", "--out", str(tmp_path / "x.avi")]) == 2
    assert "gif" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["replay", "--checkpoint", "c", "--seed", "0", "--out", "x.gif",
                                       "--ablate-head", "1", "--against", "other"])

def _report_with(figures, tmp_path):
    from reports.run.html import write_report
    from tests.test_reports import entry, synthetic_run

    evidence = synthetic_run(0, 1)
    evidence["specs"].append(entry("specs/t.py::test_replays", "replays of episodes", figures_=figures))
    return write_report(evidence, tmp_path / "report")

def test_report_embeds_a_replay_player_and_links_replays_past_the_size_cap(replays, tmp_path, monkeypatch):
    import reports.replay as rr

    small = replay_figure(replays[CRASH_SEED], title="a crashed episode")
    page = _report_with([small], tmp_path).read_text()
    assert page.count('class="replay"') == 1 and "<script>" in page and 'type="range"' in page
    assert not (tmp_path / "report" / "replays").exists()
    size = sum(len(f) for f in small["frames_png_base64"])
    monkeypatch.setattr(rr, "MAX_EMBEDDED_REPLAY_BYTES", size - 1)
    page = _report_with([small, small], tmp_path).read_text()
    linked = sorted((tmp_path / "report" / "replays").glob("*.html"))
    assert len(linked) == 2 and page.count('class="replay"') == 0
    for path in linked:
        assert f'href="replays/{path.name}"' in page
        assert 'class="replay"' in path.read_text() and 'type="range"' in path.read_text()
    assert len(page) < size, "past the cap, index.html carries thumbnails and links, not the frames"

def test_every_image_in_the_report_has_alt_text(replays, tmp_path):
    from html.parser import HTMLParser

    page = _report_with([replay_figure(replays[SAFE_SEED])], tmp_path).read_text()

    class Images(HTMLParser):
        alts: list = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.alts.append(dict(attrs).get("alt"))

    parser = Images()
    parser.feed(page)
    assert parser.alts and all(alt and alt.strip() for alt in parser.alts)

def test_head_roles_are_a_table_not_a_repr(tmp_path):
    from reports.run.html import write_report
    from tests.test_reports import synthetic_run

    evidence = synthetic_run(0, 1)
    evidence["run"]["head_roles"] = {"crossing": {"role": "crossing", "head": 1, "pinned": False, "reason": "resolved",
                                                  "shares": [{"head": 0, "share": 0.25}, {"head": 1, "share": 0.61}]}}
    page = write_report(evidence, tmp_path / "r").read_text()
    assert 'class="head-roles"' in page and "<th>share</th>" in page and "0.61" in page
    assert "{&#x27;head&#x27;" not in page and "[{" not in page

def test_spec_helpers_make_replay_pair_and_attention_scene_figures(agent, engine):
    """What the collision, paired-ablation and attention specs put into the report, on real episodes and scenes."""
    from fixtures.builder import SceneBuilder
    from fixtures.canonical import CANONICAL
    from interp.probes.interventions import head_ablation
    from reports.run.figures import render
    from reports.schema import validate_figure
    from specs.support.filmstrip import (ablation_pair_figures, attention_scene_figure, discordant_pairs,
                                         episode_replay_figures)

    records = engine.run(agent, [CRASH_SEED, SAFE_SEED], {"baseline": None})
    figures, notes = episode_replay_figures(agent, engine, [r for r in records if r.crashed])
    assert not notes and len(figures) == 1 and figures[0]["seed"] == CRASH_SEED
    assert len(figures[0]["frames_png_base64"]) == records[0].length + 1
    ablated = engine.run(agent, [CRASH_SEED, SAFE_SEED],
                         {"baseline": None, "ablate head 1": head_ablation([1], n_heads=agent.n_heads)})
    pairs = discordant_pairs(ablated, "baseline", "ablate head 1")
    assert all(s in (CRASH_SEED, SAFE_SEED) for s in pairs)
    pair_figures, notes = ablation_pair_figures(agent, engine, [SAFE_SEED], 1)
    assert not notes and pair_figures[0]["runs"] == ["agent", "head ablated: 1"]
    for figure in figures + pair_figures:
        validate_figure(figure)
    builder = SceneBuilder(agent.env_config, snapshot=True)
    scene = builder.build(next(s for s in CANONICAL.values() if s.vehicles))
    figure = attention_scene_figure(agent, scene, title="attention")
    validate_figure(figure)
    assert set(figure["heads"]) == {f"head {h}" for h in range(agent.n_heads)}
    assert render(figure).startswith(b"\x89PNG")
