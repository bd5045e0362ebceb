"""The documentation's tables of head roles (``docs/guide/roles.md``), from the committed role maps of the bundled
agents, and their re-derivation when the attention rule changes.

``python benchmarks/roles_table.py`` prints one markdown row per role map: roles held, and per category
(``crossing``, ``proximity``, ``ego``) the most selective head with its t-values on the two halves, its
max-adjusted p against the initialised null and, where the architecture's trained null was applied, its
Bonferroni-adjusted p against that null (``interp.role_trained_null``).

``--refresh`` first recomputes the attention part of every role map with the current rule (the causal part, which
needs rollouts, is kept as it was measured) and writes it in place, atomically; a row whose attention roles changed
ends with ``<!-- was {...} -->``, the roles it held before. ``--heads H`` limits both to the role maps of one head
count. Run from the project root."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, ".")

DATA = Path("docs/results/data")
# role map file -> checkpoint folder
MAPS = {
    **{DATA / "roles-alpha-0.01" / f"{a}.json": Path("checkpoints") / a
       for a in ("reference-v1", "reference-2h", "reference-early")},
    **{DATA / "zoo-1000" / m / "roles.json": Path("checkpoints/zoo-1000") / m
       for m in ("2h-s1", "2h-s2", *(f"4h-s{i}" for i in range(1, 9)), "8h-s1", "8h-s2")},
    **{DATA / "zoo-3500" / m / "roles.json": Path("checkpoints/zoo") / m
       for m in ("4h-s1", "4h-s2", "4h-s3", "4h-s4", "4h-s5", "4h-s6", "4h-s7", "4h-s8", "2h-s9", "2h-s10",
                 "8h-s11", "8h-s12")},
}
COLUMNS = ("crossing", "proximity", "ego")


def causal_part(data: dict) -> dict:
    """The causal part of a role map in the form ``interp.roles.merge_causal`` takes."""
    from interp.roles import CAUSAL_ROLES

    metrics = sorted({m for e in data["heads"] for m in (e.get("effects") or {})})
    return {"roles": {r: data["roles"].get(r, []) for r in CAUSAL_ROLES},
            "reasons": {r: data["reasons"].get(r, "") for r in CAUSAL_ROLES},
            "effects": {m: [e["effects"][m] for e in data["heads"]] for m in metrics},
            **{k: v for k, v in (data.get("causal") or {}).items()}}


def refresh(path: Path, checkpoint: Path) -> dict:
    """The role map at ``path`` with its attention part recomputed for ``checkpoint`` under the current rule."""
    from fixtures.role_scenes import calibration
    from interp import roles as R
    from interp.simulation.agent import load_agent

    old = json.loads(path.read_text())
    agent = load_agent(checkpoint)
    if agent.identity != old["identity"]:
        raise SystemExit(f"{path} is the role map of {old['identity']}, {checkpoint} is {agent.identity}")
    obs, masks, distance = calibration(agent.env_config)
    new = R.merge_causal(R.find_roles(agent, obs, masks, distance, causal=False).to_dict(), causal_part(old))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(new, indent=1))
    os.replace(tmp, path)
    return new


def best(data: dict, category: str) -> str:
    """The category's most selective head (smallest larger-half adjusted p, then largest |t|) as a table cell."""
    rows = []
    for e in data["heads"]:
        s = e["selectivity"][category]
        p = s["p_value"] if s["p_value"] is not None else 1.0
        pt = s.get("p_trained")
        pt = max(pt) if pt and None not in pt else None
        rows.append((max(p, pt or 0.0), -min(abs(t) for t in s["statistic"]), e["head"], s, p, pt))
    _, _, head, s, p, pt = min(rows)
    t0, t1 = s["statistic"]
    return (f"head {head}: t {t0:+.1f} / {t1:+.1f}, p {p:.3g}" + (f", trained p {pt:.3g}" if pt is not None else ""))


def row(name: str, data: dict) -> str:
    from interp.role_selectivity import CATEGORIES

    held = "; ".join(f"{c} (head {', '.join(map(str, h))})" for c, h in data["roles"].items() if c in CATEGORIES and h)
    trained = (data.get("null") or {}).get("trained") or {}
    against = (f"{data['null']['networks']} init + {trained['networks']} trained" if trained.get("applied")
               else f"{data['null']['networks']} init" + (f" (trained: {trained['networks']} of {trained['needed']})"
                                                           if trained else ""))
    return (f"| {name} | {data['n_heads']} | {('**' + held + '**') if held else 'none'} | "
            + " | ".join(best(data, c) for c in COLUMNS) + f" | {against} |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", action="store_true", help="recompute the attention part of every role map")
    parser.add_argument("--heads", type=int, help="only role maps of this head count")
    args = parser.parse_args(argv)
    print("| agent | heads | attention roles held | " + " | ".join(COLUMNS) + " | null networks |")
    print("|---|---|---|" + "---|" * len(COLUMNS) + "---|")
    for path, checkpoint in MAPS.items():
        old = json.loads(path.read_text())
        if args.heads and old["n_heads"] != args.heads:
            continue
        data = refresh(path, checkpoint) if args.refresh else old
        before = {c: h for c, h in old["roles"].items() if h}
        after = {c: h for c, h in data["roles"].items() if h}
        name = str(checkpoint.relative_to("checkpoints"))
        print(row(name, data) + ("" if before == after else f" <!-- was {before} -->"), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
