"""The simulation layer: the env factory, the fast step, row identity, worker pools (local and Ray), the
agent (model + env config + identity), the rollout engine and its cache."""
