"""The specs: one claim about the agent per test, decided by evidence."""
