"""Rebuild the real evidence files the lineage-aware diff is tested on (``tests/test_diff_lineage.py``).

Runs three specs under ``--profile quick`` on bundled agents: the held-out collision rate (the agent's own
outcome), the per-head ablation (a mechanistic effect per head index) and the crossing head's attention
(which records the head roles in ``run.head_roles``). The agents: ``reference-v1`` (the earlier bundled
reference, training seed 0), its snapshot ``reference-early`` (one lineage), a lesioned ``reference-v1`` (the
crossing head's value rows zeroed in the weights, saved with its own training metadata: the same lineage), and
two independently trained zoo members ``4h-s1`` / ``4h-s2`` (training seeds 1 and 2).

Figures and scene pictures are dropped from the stored copies (the diff reads verdicts, effects and run
metadata only), so the files stay small, and the checkpoint is named by its path in the repository. Resumable: an agent whose file exists is skipped.

    nice -n 10 python -m tests.data.lineage.build > lineage-build.log 2>&1
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from interp.simulation.agent import load_agent, save_agent
from reports.schema import save

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
SPECS = ("collision_rate_on_held_out_seeds or ablating_a_head_raises_collisions "
         "or crossing_head_attends_most_to_the_nearest_crossing_vehicle")
AGENTS = {"reference-v1": "checkpoints/reference-v1", "reference-early": "checkpoints/reference-early",
          "zoo-4h-s1": "checkpoints/zoo-1000/4h-s1", "zoo-4h-s2": "checkpoints/zoo-1000/4h-s2"}
LESIONED_HEAD = 1  # reference-v1's crossing head as these runs record it (run.head_roles; docs/guide/regression.md)


def lesioned_reference(out: Path) -> Path:
    """``reference-v1`` with head ``LESIONED_HEAD``'s value projection zeroed in the weights (a permanent
    zero-ablation), keeping its training metadata: a damaged checkpoint of the same run."""
    agent = load_agent(ROOT / "checkpoints" / "reference-v1")
    model = agent.model
    per_head = model.attention_layer.features_per_head
    with torch.no_grad():
        model.attention_layer.value_all.weight[LESIONED_HEAD * per_head:(LESIONED_HEAD + 1) * per_head] = 0.0
    lesioned = agent.with_model(model, f"value rows of head {LESIONED_HEAD} zeroed")
    path = out / "agent.pt"
    save_agent(lesioned, path)
    return path


def run_specs(checkpoint: Path | str, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pytest", "specs/", "--profile", "quick", "-k", SPECS, "-q", "-p", "no:xdist",
               "-p", "no:cacheprovider", "--checkpoint", str(checkpoint), "--report-dir", tmp]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=False)
        evidence = json.loads((Path(tmp) / "evidence.json").read_text())
    strip_for_storage(evidence, checkpoint)
    save(evidence, target)
    print(f"wrote {target}", flush=True)


def strip_for_storage(evidence: dict, checkpoint: Path | str) -> None:
    """Drop figures and scene pictures; name the checkpoint by its path in the repository (a lesioned copy,
    written to a temporary folder, as ``checkpoints/reference-v1 [lesioned]``) instead of a machine's path."""
    for entry in evidence["specs"]:
        entry["figures"] = []
        entry.pop("scenes", None)
    described = evidence["run"]["checkpoint"]
    try:
        described["source"] = str(Path(checkpoint).resolve().relative_to(ROOT) / "agent.pt")
    except ValueError:
        described["source"] = "checkpoints/reference-v1 [lesioned]/agent.pt"
    evidence["run"].pop("command", None)


def main() -> None:
    for name, path in AGENTS.items():
        target = HERE / f"{name}.json"
        if not target.exists():
            run_specs(ROOT / path, target)
    target = HERE / "reference-v1-lesioned.json"
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            run_specs(lesioned_reference(Path(tmp)), target)


if __name__ == "__main__":
    main()
