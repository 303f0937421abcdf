"""The layers point down only: ``jepa`` imports neither ``planners`` nor ``eval`` (not even by a name
in a string), and ``planners`` does not import ``eval``."""

import pkgutil
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

LOWER_LAYERS = {"jepa": ("planners", "eval"), "planners": ("eval",)}


def _modules(package: str) -> list[str]:
    pkg = __import__(package)
    return [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}.")]


@pytest.mark.parametrize("package", sorted(LOWER_LAYERS))
def test_importing_every_module_of_a_layer_loads_nothing_above_it(package):
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        f"for m in pkgutil.walk_packages(pkg.__path__, prefix={package + '.'!r}):\n"
        "    importlib.import_module(m.name)\n"
        f"above = sorted(m for m in sys.modules if m.split('.')[0] in {LOWER_LAYERS[package]!r})\n"
        "print(repr(above))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", f"{package} pulled in {out.stdout.strip()}"


@pytest.mark.parametrize("package", sorted(LOWER_LAYERS))
def test_no_module_names_an_upper_layer_even_in_a_string(package):
    upper = "|".join(LOWER_LAYERS[package])
    pattern = re.compile(rf"""(?:^\s*(?:from|import)\s+(?:{upper})\b|["'](?:{upper})\.\w)""", re.M)
    offenders = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_console_script_lives_in_the_top_layer():
    text = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(r'^jepa = "eval\.cli:main"$', text, re.M)
    assert len(_modules("jepa")) > 20  # the walk really saw the package
