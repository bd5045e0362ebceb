"""Benjamini–Yekutieli q-values across a run's claims (known answers), and per-effect verdicts on evidence."""
from __future__ import annotations

import numpy as np
from statsmodels.stats.multitest import multipletests

from reports.run.multiplicity import across_claims, claim_p_value, summary_line


def _entry(name: str, *ps) -> dict:
    return {"nodeid": f"specs/x.py::{name}", "verdict": "supported",
            "effects": [{"name": f"e{i}", "value": 0.1, "ci": None, "n": 10, "p_value": p} for i, p in enumerate(ps)]}


def test_q_values_are_benjamini_yekutieli_over_the_claims_with_a_p_value():
    entries = [_entry("a", 0.001), _entry("b", None, 0.04), _entry("c", 0.03), _entry("d"), _entry("e", None)]
    m = across_claims(entries)
    assert m["claims_tested"] == 3 and m["outside"] == ["specs/x.py::d", "specs/x.py::e"]
    expected = multipletests([0.001, 0.04, 0.03], method="fdr_by")[1]
    np.testing.assert_allclose([f["q_value"] for f in m["family"]], expected)
    # by hand: c(3) = 1 + 1/2 + 1/3; the smallest p's q is min over ranks of p_(k) * 3 * c / k
    c = 1 + 1 / 2 + 1 / 3
    assert abs(m["family"][0]["q_value"] - min(0.001 * 3 * c, 0.03 * 3 * c / 2, 0.04 * 3 * c / 3)) < 1e-12
    assert all(f["q_value"] >= f["p_value"] for f in m["family"])  # never below its p-value
    assert "3 claims with a p-value" in summary_line(m)


def test_a_claims_p_value_is_the_smallest_of_its_own_effects_controls_left_out():
    entry = _entry("x", None, 0.2, 0.01)
    entry["effects"].append({"name": "control: untrained", "value": 0.5, "ci": None, "n": 10, "p_value": 1e-9})
    assert claim_p_value(entry) == 0.01 and claim_p_value(_entry("y")) is None
