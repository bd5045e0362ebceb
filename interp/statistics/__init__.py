"""The statistics layer (pure computation): intervals, verdicts, the sequential paired test, its
simulation and design. ``interp.stats`` re-exports it all, so ``from interp.stats import ...`` is the usual door."""
