"""hypodrive reports: evidence.json (schema), figures, the HTML report, and checkpoint-to-checkpoint diffs.

Knows only Evidence's JSON form and matplotlib, never the model. Modules are imported on demand:
``reports.schema`` (validate / load / save / merge), ``reports.figures`` (figure spec -> PNG),
``reports.html`` (write_report), ``reports.diff`` (diff_evidence); ``python -m reports --help``.
"""
