"""The project's own top-level folders are the ones imported.

``fixtures`` is also the name of an unrelated PyPI package (and ``interp`` could be anyone's). The
folders are not installed: pytest's ``pythonpath = ["."]`` puts the project root first on sys.path, and
each folder must be a *regular* package (an ``__init__.py``), because a namespace package loses to a
regular package of the same name anywhere later on sys.path (site-packages included).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ["fixtures", "interp"]


@pytest.mark.parametrize("name", PROJECT_PACKAGES)
def test_project_folder_is_imported(name):
    module = __import__(name)
    assert module.__file__ is not None, f"{name} is a namespace package; give it an __init__.py"
    assert Path(module.__file__).resolve() == ROOT / name / "__init__.py"


def test_project_folders_win_over_installed_packages_of_the_same_name(tmp_path):
    """A fake installed ``fixtures``/``interp`` later on sys.path (as site-packages is) must not be imported."""
    for name in PROJECT_PACKAGES:
        fake = tmp_path / name
        fake.mkdir()
        (fake / "__init__.py").write_text("IMPOSTOR = True\n")
    script = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}]\n"  # what pytest's pythonpath = ['.'] does
        f"sys.path.append({str(tmp_path)!r})\n"  # an installed distribution, after the project
        f"mods = [__import__(n) for n in {PROJECT_PACKAGES!r}]\n"
        "print(json.dumps([[m.__name__, m.__file__, hasattr(m, 'IMPOSTOR')] for m in mods]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    for name, file, impostor in json.loads(result.stdout):
        assert not impostor, f"{name} was imported from {file}"
        assert Path(file).resolve() == ROOT / name / "__init__.py"


def test_pytest_puts_the_project_root_on_sys_path():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert settings["tool"]["pytest"]["ini_options"]["pythonpath"] == ["."]
    assert settings["tool"]["setuptools"]["packages"] == []  # nothing installed under the clashing names
    assert str(ROOT) in [str(Path(p).resolve()) for p in sys.path if p]
