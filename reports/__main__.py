"""``python -m reports``: diff two evidence files, rebuild the HTML report, merge worker files, validate."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from reports.compare.diff import DEFAULT_ALPHA, MATCH_HEADS, diff_evidence
from interp.atomic import JSON_REMEDY, write_file
from reports.atomic import CLI_REMEDY
from reports.schema import SCHEMA_VERSION, EvidenceError, load, merge_files, save

_DESCRIPTION = f"""Reports on hypodrive spec runs (evidence.json, schema {SCHEMA_VERSION}).

  diff BASE/evidence.json NEW/evidence.json   verdict changes and significant effect changes;
                                              exit 1 on a regression, 0 otherwise, 2 on bad input
  diff BASE/aggregate.json NEW/aggregate.json per-agent verdict changes on shared agents (paired,
                                              descriptive); per-stratum Barnard tests on disjoint ones
  html EVIDENCE.json --out DIR                rebuild DIR/index.html (and DIR/evidence.json)
  merge PART.json... --out EVIDENCE.json      merge pytest-xdist workers' partial evidence files
  validate EVIDENCE.json...                   check files against the schema (exit 1 if any is invalid)
  findings EVIDENCE.json --out FINDINGS.json   record the run's refuted specs as findings of its checkpoint
"""

_DIFF_HELP = """Compare a baseline run with a new run (e.g. the previous checkpoint vs the new one).

Specs are matched by pytest node id, effects by name. Per-head effects (an effect naming "head N") are
matched by head index only when both checkpoints come from one training run (same lineage: a snapshot, a
continuation or an edited copy of one run, from run.checkpoint.lineage); otherwise by the role each head
holds on its own agent, and those whose heads share no role are listed as "not comparable". The first lines
of the diff say which; --match-heads overrides it. Effects are compared with an exact paired test
(McNemar: scipy.stats.binomtest on discordant pairs) on the seeds both runs share when both recorded
per-seed outcomes; otherwise with an unpaired z test from value, CI and n (two-proportion when the effect
is a proportion). Overlapping CIs are never used as a test. Each comparison says which test it used.

A regression is a verdict that got worse (supported > inconclusive > refuted = vacuous = not-applicable >
no verdict), an effect that changed significantly in its worse direction, or a head role that resolved on
the baseline and is lost in the new run. Only the agent's own outcomes (collision rate, arrivals: the
opposite of 'better') have a worse direction, or effects whose spec states one ('worse_direction'); a
mechanistic effect (a head's ablation effect, an attention share) only changes. Schema-1 files are read too.
Exit status: 1 on a regression, 0 otherwise, 2 if an input is missing or invalid."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except EvidenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reports", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    diff = sub.add_parser("diff", help="compare two evidence files; exit 1 on a regression",
                          description=_DIFF_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    diff.add_argument("base", type=Path, help="the baseline run's evidence.json (e.g. the previous checkpoint)")
    diff.add_argument("new", type=Path, help="the new run's evidence.json")
    diff.add_argument("--alpha", type=_alpha, default=DEFAULT_ALPHA,
                      help=f"significance level of each effect test, two-sided (default {DEFAULT_ALPHA})")
    diff.add_argument("--json", type=Path, metavar="OUT", help="also write the diff as JSON to OUT")
    diff.add_argument("--match-heads", choices=MATCH_HEADS, default=None,
                      help="compare per-head effects by head index or by role (default: by index within one "
                           "lineage, by role across lineages or when the lineage is unknown)")
    diff.set_defaults(func=_cmd_diff)

    page = sub.add_parser("html", help="rebuild the HTML report from an evidence file",
                          description="Write DIR/index.html (self-contained, figures embedded) and "
                                      "DIR/evidence.json from an evidence file.")
    page.add_argument("evidence", type=Path, help="evidence.json to render")
    page.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write index.html into")
    page.add_argument("--baseline", type=Path, metavar="BASE_EVIDENCE",
                      help="also show the comparison with this baseline run's evidence.json")
    page.add_argument("--alpha", type=_alpha, default=DEFAULT_ALPHA,
                      help=f"significance level for --baseline (default {DEFAULT_ALPHA})")
    page.set_defaults(func=_cmd_html)

    merge = sub.add_parser("merge", help="merge partial evidence files of pytest-xdist workers",
                           description="Merge one-file-per-worker partial evidence into one evidence file "
                                       "(same checkpoint required; specs ordered by collection index).")
    merge.add_argument("parts", type=Path, nargs="+", help="partial evidence files")
    merge.add_argument("--out", type=Path, required=True, help="merged evidence.json to write")
    merge.set_defaults(func=_cmd_merge)

    found = sub.add_parser("findings", help="record refuted specs as findings of the checkpoint",
                           description="Write the refuted (and vacuous) specs of a run as FINDINGS.json (format 2: "
                                       "spec id -> verdict, claim, summary; keyed by the checkpoint's identity; put it "
                                       "next to the checkpoint, e.g. checkpoints/reference/findings.json). On that "
                                       "identity only, the spec plugin then expects each spec to end with that same "
                                       "verdict; anything else (a pass, another verdict, an error) fails the run.")
    found.add_argument("evidence", type=Path)
    found.add_argument("--out", type=Path, required=True)
    found.add_argument("--only", action="append", default=None, metavar="SPEC",
                       help="record only this spec (repeatable; default: every refuted spec)")
    found.set_defaults(func=_cmd_findings)

    check = sub.add_parser("validate", help="check evidence files against the schema",
                           description=f"Check evidence files against schema {SCHEMA_VERSION}; every "
                                       "problem is listed with its path. Exit 1 if any file is invalid.")
    check.add_argument("files", type=Path, nargs="+")
    check.set_defaults(func=_cmd_validate)
    return parser


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"alpha must lie strictly between 0 and 1, got {value}")
    return value


def _cmd_diff(args: argparse.Namespace) -> int:
    from reports.zoo.aggregate import is_aggregate

    if any(is_aggregate(_json_or_none(p)) for p in (args.base, args.new)):  # two aggregate.json files
        return _cmd_diff_aggregates(args)
    diff = diff_evidence(load(args.base), load(args.new), alpha=args.alpha, match_heads=args.match_heads)
    print(diff.format_text())
    if args.json:
        write_file(args.json, json.dumps(diff.to_dict(), indent=1, allow_nan=False) + "\n", remedy=JSON_REMEDY,
                   what="the diff")
    return 1 if diff.regressed else 0


def _json_or_none(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # load() then says what is wrong with it


def _cmd_diff_aggregates(args: argparse.Namespace) -> int:
    """Two aggregate reports (``python -m interp zoo run``): per-agent verdict changes on shared agents, per-stratum
    tests on disjoint ones (``reports.zoo.aggregate_diff``)."""
    from reports.zoo.aggregate_diff import diff_aggregates, format_diff

    try:
        diff = diff_aggregates(_json_or_none(args.base), _json_or_none(args.new), alpha=args.alpha)
    except ValueError as exc:
        print(f"error: {exc} (diff compares two evidence files or two aggregate reports)", file=sys.stderr)
        return 2
    print(format_diff(diff))
    if args.json:
        write_file(args.json, json.dumps(diff, indent=1, allow_nan=False) + "\n", remedy=JSON_REMEDY,
                   what="the diff")
    return 1 if diff["regressed"] else 0


def _cmd_html(args: argparse.Namespace) -> int:
    from reports.run.html import write_report  # matplotlib only when drawing

    evidence = load(args.evidence)
    diff = None
    if args.baseline:
        diff = diff_evidence(load(args.baseline), evidence, alpha=args.alpha).to_dict()
    page = write_report(evidence, args.out, diff=diff, remedy=CLI_REMEDY)
    print(f"wrote {page} ({len(evidence['specs'])} specs)")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    merged = merge_files(args.parts)
    save(merged, args.out, remedy=CLI_REMEDY)
    print(f"wrote {args.out} ({len(merged['specs'])} specs from {len(args.parts)} file(s))")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        try:
            evidence = load(path)
        except EvidenceError as exc:
            bad += 1
            print(f"INVALID {exc}")
        else:
            print(f"ok      {path} ({len(evidence['specs'])} specs)")
    return 1 if bad else 0

def _cmd_findings(args: argparse.Namespace) -> int:
    from reports.run.findings import findings_from_evidence

    data = findings_from_evidence(load(args.evidence), include=set(args.only) if args.only else None)
    write_file(args.out, json.dumps(data, indent=2) + "\n", what="the findings")
    print(f"wrote {len(data['findings'])} findings for {data['identity']} to {args.out}")
    return 0



if __name__ == "__main__":
    sys.exit(main())

