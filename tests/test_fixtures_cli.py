"""python -m fixtures: list and build."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from fixtures.__main__ import main
from fixtures.canonical import CANONICAL
from fixtures.scenario import EgoSpec, Scenario, VehicleSpec

ROOT = Path(__file__).resolve().parent.parent


def test_list_prints_each_name_then_its_description():
    out = subprocess.run([sys.executable, "-m", "fixtures", "list"], cwd=ROOT, capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(CANONICAL)
    for line, scenario in zip(lines, CANONICAL.values()):
        assert line.endswith(scenario.description)


def test_build_writes_observation_picture_and_ground_truth(tmp_path, capsys):
    files = {k: tmp_path / f"out.{k}" for k in ("npy", "png", "json")}
    assert main(["build", "dense", "--obs", str(files["npy"]), "--png", str(files["png"]),
                 "--json", str(files["json"])]) == 0
    obs = np.load(files["npy"])
    assert obs.dtype == np.float32 and obs.shape == (1, 15, 7)
    data = json.loads(files["json"].read_text())
    assert Scenario.from_dict(data["scenario"]) == CANONICAL["dense"]
    for vehicle in data["vehicles"]:
        assert "row" in vehicle and "kind" in vehicle and "distance_to_conflict" in vehicle
        if vehicle["row"] is not None:
            assert obs[0, vehicle["row"], 0] == 1.0
        else:
            assert vehicle["unobserved_reason"]
    assert files["png"].stat().st_size > 1000


def test_build_reads_a_scenario_json_and_reports_errors(tmp_path, capsys):
    path = tmp_path / "mine.json"
    path.write_text(Scenario(ego=EgoSpec(distance=30.0), vehicles=(VehicleSpec("right", 12.0, name="r"),)).to_json())
    out = tmp_path / "mine.npy"
    assert main(["build", str(path), "--obs", str(out)]) == 0
    assert np.load(out).shape == (1, 15, 7)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"vehicles": [{"approach": "left", "distance": 10.0, "speed": -2.0, "name": "neg"}]}))
    assert main(["build", str(bad)]) == 2
    assert "'neg'" in capsys.readouterr().err
    assert main(["build", "no_such_scenario"]) == 2
    assert "known:" in capsys.readouterr().err
