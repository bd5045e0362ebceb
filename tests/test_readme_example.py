"""The README's worked example ("Writing your own spec") is run as written, so it cannot rot: its code block is
copied into a throwaway spec folder and run through the real plugin on the bundled reference agents: the current
``reference`` and the earlier ``reference-v1``, each with the share of slowing scenes the docs give for it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFTEST = '''
from pathlib import Path

import specs.plugin as _plugin

_plugin.SPECS_DIR = Path(__file__).parent / "specs"
pytest_plugins = ["specs.plugin"]
'''


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\n# specs/test_my_claims.py")
    return text[start + len("```python\n"):text.index("```\n", start + 10)]


@pytest.mark.parametrize("checkpoint, slowing", [("reference", 17), ("reference-v1", 0)])
def test_the_worked_example_runs_and_ends_refuted_on_the_reference_with_its_control_rejected(tmp_path, checkpoint,
                                                                                            slowing):
    """docs/guide/writing-specs.md: refuted on both references, slowing in 17 and 0 of 120 scenes."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "test_my_claims.py").write_text(readme_example())
    proc = subprocess.run([sys.executable, "-m", "pytest", "specs/test_my_claims.py", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "--report-dir=report", "-q",
                           f"--checkpoint={ROOT / 'checkpoints' / checkpoint}"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    evidence = json.loads((tmp_path / "report" / "evidence.json").read_text())
    (spec,) = evidence["specs"]
    assert spec["verdict"] == "refuted", proc.stdout[-3000:]
    effect = spec["effects"][0]
    assert effect["name"] == "share slowing down" and effect["n"] == 120
    assert effect["value"] * 120 == pytest.approx(slowing)
    assert spec["controls"] == [{"name": "the car hidden from the agent", "rejected": True,
                                 "detail": spec["controls"][0]["detail"]}]
