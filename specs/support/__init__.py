"""The spec machinery conftest.py uses: budgets, the evidence object, findings, head roles, run metadata."""
