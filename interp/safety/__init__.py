"""Surrogate safety measures (TTC, PET, DRAC, minimum distance): ``measures`` computes them from recorded
states with numpy only; ``recorder`` records those states in the environment workers."""
