"""Regression between two runs of the specs: verdict and effect changes, heads matched by lineage or role."""
