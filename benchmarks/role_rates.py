"""Measure head-role rates: how often each condition of tests/test_roles.py gets (or, planted, resolves) its role.

Usage: python benchmarks/role_rates.py TRIES HEADS[,HEADS] "CONDITION[;CONDITION]" (run from the project root;
conditions as named in tests/test_roles.py NAMES). Prints hits/tries and the 95 % Wilson interval per line."""
from __future__ import annotations

import sys
import time
sys.path.insert(0, ".")
import tests.test_roles as T
from fixtures.role_scenes import calibration as build
from interp import roles as R
from interp.simulation.agent import load_agent
from statsmodels.stats.proportion import proportion_confint
agent = load_agent(T.ARCHITECTURES[4])
obs, masks, distance = build(agent.env_config)
cal = (obs, masks, distance, R.calibration_design(obs, masks, distance))
n = int(sys.argv[1])
for heads in (int(h) for h in sys.argv[2].split(",")):
    for name in sys.argv[3].split(";"):
        t = time.time()
        hits, tries = T._run(cal, heads, name, n)
        lo, hi = proportion_confint(hits, tries, 0.05, "wilson")
        print(f"{heads} heads | {name} | {hits}/{tries} | Wilson 95% {lo:.3f}-{hi:.3f} | {time.time()-t:.0f}s", flush=True)
