"""Reports over many agents: the aggregate (counts per claim, strata), its diff, its HTML page, claims over training and learning curves."""
