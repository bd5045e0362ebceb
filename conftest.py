"""The entry point of hypodrive's pytest plugin, which lives in ``specs/plugin.py``."""
pytest_plugins = ["specs.plugin"]
