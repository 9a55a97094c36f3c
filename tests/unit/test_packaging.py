"""The repository root is the `fathom` package: keep the package list and the layers true."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_SHIPPED = {"tests", "bench", "scripts", "docs", ".ci", ".venv", "build"}


def declared_packages() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(pyproject["tool"]["setuptools"]["packages"])


def package_folders() -> set[str]:
    found = {"fathom"}
    for init in ROOT.rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT)
        if not relative.parts or relative.parts[0] in NOT_SHIPPED or "." in relative.parts[0]:
            continue
        if any(part.endswith(".egg-info") or part == "__pycache__" for part in relative.parts):
            continue
        found.add(".".join(("fathom", *relative.parts)))
    return found


def test_every_package_folder_is_declared() -> None:
    assert package_folders() == declared_packages()


def test_no_stray_modules_at_the_root() -> None:
    # A root module would ship as fathom.<name>; only these are meant to.
    assert sorted(p.name for p in ROOT.glob("*.py")) == ["__init__.py", "__main__.py"]


@pytest.mark.slow
def test_wheel_contains_the_declared_packages(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("fathom_llm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for package in declared_packages():
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    assert not [n for n in names if n.startswith(("fathom/tests/", "fathom/bench/"))]
    assert "fathom/adapters/storage/sql/migrations/script.py.mako" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_core_imports_only_the_standard_library_and_itself() -> None:
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for module in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or module.startswith("fathom.core"):
                continue
            offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def test_import_linter_contracts_hold() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--config",
            str(ROOT / "pyproject.toml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
