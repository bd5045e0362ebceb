"""hypodrive reports: everything built from Evidence's JSON form, one sub-package per product.

- ``reports.schema`` (validate / load / save / merge) and ``reports.atomic`` (the one atomic writer): shared by all.
- ``reports.run``: the single-agent report (figure spec -> PNG, the self-contained HTML page, findings, the run's
  multiplicity summary, the role table, ranked scenes).
- ``reports.compare``: regression between two runs (``reports.compare.diff``; heads matched by lineage or role).
- ``reports.zoo``: reports over many agents (the aggregate, its diff and HTML page, claims over training).
- ``reports.replay``: drawing replays (GIF / MP4 / HTML) of episodes re-simulated by ``interp.replay``.

Knows only Evidence's JSON form, matplotlib and imageio, never the model. Modules are imported on demand;
``python -m reports --help``.
"""
