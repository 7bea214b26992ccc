"""The arrows between apps point one way (docs/architecture.md): a back arrow fails here, in CI.

accounts <- casework <- partners; linkage reads casework and accounts (casework
hands it identifying details through casework.identifying, never by importing
it); reports reads casework, linkage and accounts; nothing in the apps imports
devdata (the synthetic data generators). Every import is
read from the source (functions, TYPE_CHECKING blocks included); migrations
name models by string and are not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APPS = ("accounts", "casework", "linkage", "partners", "reports", "devdata")
# What each app may not import.
FORBIDDEN: dict[str, set[str]] = {
    "accounts": {"casework", "linkage", "partners", "reports", "devdata"},
    "casework": {"linkage", "partners", "reports", "devdata"},
    "linkage": {"partners", "reports", "devdata"},
    "partners": {"devdata"},
    "reports": {"partners", "devdata"},
    "config": {"devdata"},
    "devdata": set(),
}


def imported_apps(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def source_files(app: str) -> list[Path]:
    return [path for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts]


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_no_back_arrow(app):
    files = source_files(app)
    if app != "devdata":
        assert files, f"no source found for {app}"
    back = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for module, line in sorted(imported_apps(path))
        if module in FORBIDDEN[app]
    ]
    assert back == [], "\n".join(back)


def test_the_rule_catches_a_back_arrow(tmp_path):
    offender = tmp_path / "services.py"
    offender.write_text("def f():\n    from partners.models import Share\n    return Share\n")
    assert ("partners", 2) in imported_apps(offender)
