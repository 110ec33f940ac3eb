"""The import contracts cover contexts that do not exist yet: a new context that imports
another's services, or that no layer places, breaks them without editing pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "miniprogram_api", "admin_api", "open_api", "wechat_hooks", "jobs")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and of pyproject.toml (with the contracts), nothing else."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    chosen = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *chosen],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def add_context(tree: Path, name: str, modules: dict[str, str]) -> None:
    package = tree / "app" / name
    package.mkdir()
    (package / "__init__.py").write_text('"""A context added by the test."""\n')
    for module, source in modules.items():
        (package / f"{module}.py").write_text(source)


def test_the_copied_tree_keeps_every_contract(tree: Path) -> None:
    """The control: the copy as it is passes, so a failure below is the added module's."""
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_context_importing_another_contexts_services_breaks_the_contracts(
    tree: Path,
) -> None:
    add_context(
        tree,
        "coupons",
        {"services": "from app.points import services as points\n\nRULES = points\n"},
    )
    result = lint(tree, "services-are-entry-points")
    assert result.returncode == 1
    assert "app.coupons.services -> app.points.services" in result.stdout


def test_operations_of_a_new_context_may_not_call_services_either(tree: Path) -> None:
    add_context(
        tree,
        "lottery",
        {"operations": "from app.tiers.services import get_policy\n\nPOLICY = get_policy\n"},
    )
    result = lint(tree, "services-are-entry-points")
    assert result.returncode == 1
    assert "app.lottery.operations -> app.tiers.services" in result.stdout


def test_a_new_context_must_take_its_place_in_the_order(tree: Path) -> None:
    add_context(tree, "tags", {"models": "TAGS: list[str] = []\n"})
    result = lint(tree, "context-order")
    assert result.returncode == 1
    assert "app.tags" in result.stdout


def test_a_lower_context_importing_a_higher_one_breaks_the_order(tree: Path) -> None:
    (tree / "app" / "members" / "reach_up.py").write_text(
        "from app.orders import operations as orders\n\nORDERS = orders\n"
    )
    result = lint(tree, "context-order")
    assert result.returncode == 1
    assert "app.members.reach_up" in result.stdout
