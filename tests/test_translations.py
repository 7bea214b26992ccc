"""Every visible string is translated into Ukrainian: the catalog is complete and nothing in it is fuzzy.

``makemessages`` runs on a copy of the sources, so a string added to the code
or a template without its Ukrainian translation fails here, not in front of
a caseworker.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
CATALOG = ROOT / "locale" / "uk" / "LC_MESSAGES" / "django.po"
SOURCES = (
    "config",
    "accounts",
    "casework",
    "linkage",
    "partners",
    "reports",
    "devdata",
    "templates",
    "locale",
    "manage.py",
)


def _pending(catalog: polib.POFile) -> list[str]:
    return [
        entry.msgid for entry in catalog if not entry.obsolete and (not entry.translated() or "fuzzy" in entry.flags)
    ]


def test_the_committed_catalog_has_nothing_untranslated_or_fuzzy():
    assert _pending(polib.pofile(str(CATALOG))) == []


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext's xgettext (Debian: gettext)")
def test_every_string_of_the_code_and_templates_is_in_the_catalog(tmp_path):
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
        else:
            shutil.copy(source, tmp_path / name)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "uk", "-v", "0"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"},
        timeout=300,
    )
    extracted = polib.pofile(str(tmp_path / "locale" / "uk" / "LC_MESSAGES" / "django.po"))
    missing = _pending(extracted)
    assert missing == [], "Translate these (make messages, then locale/uk/LC_MESSAGES/django.po):\n" + "\n".join(
        missing
    )
