"""Uploads too large to keep in memory wait in the private directory, never the system's /tmp
(casework.uploads), and the web import's sweep deletes what a killed worker left there.

The files here are synthetic; the source_refs are invented.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import tempfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.utils import timezone

from casework import uploads, web_import
from casework.import_models import ImportJob

pytestmark = pytest.mark.django_db

CASES = b"source_ref,sex,birth_year,oblast,reported_on\n" + b"".join(
    b"SPOOL-%05d,F,2014,UA-14,2024-01-02\n" % n for n in range(400)
)


@pytest.fixture(autouse=True)
def private_dir(settings, tmp_path):
    settings.IMPORT_PRIVATE_DIR = tmp_path / "imports"
    return settings.IMPORT_PRIVATE_DIR


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_large_upload_is_spooled_in_the_private_directory_and_gone_after_its_request(
    client, supervisor, private_dir, settings, monkeypatch
):
    # Every upload over one byte is spooled, as a cases file over 2.5 MB is.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1
    seen: list[tuple[Path, int, int, bytes]] = []
    save = web_import._save

    def spy(upload, path):
        spooled = Path(upload.temporary_file_path())
        seen.append((spooled, mode(spooled), mode(spooled.parent), spooled.read_bytes()))
        save(upload, path)

    monkeypatch.setattr(web_import, "_save", spy)
    client.force_login(supervisor)
    response = client.post("/imports/", {"cases": SimpleUploadedFile("children (names).csv", CASES)})

    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert (private_dir / str(job.key) / "upload-cases").read_bytes() == CASES
    [(spooled, file_mode, dir_mode, content)] = seen
    assert spooled.parent == private_dir / uploads.UPLOADING
    assert file_mode == 0o600 and dir_mode == 0o700 and mode(private_dir) == 0o700
    assert content == CASES
    # Its name says nothing of the client's file name.
    assert "children" not in spooled.name and not spooled.name.endswith(".csv")
    assert not spooled.exists() and not list(spooled.parent.iterdir())
    assert not list(Path(tempfile.gettempdir()).glob("*.upload*.csv"))


def test_a_small_upload_stays_in_memory(client, supervisor, private_dir, monkeypatch):
    seen = []
    save = web_import._save

    def spy(upload, path):
        seen.append(hasattr(upload, "temporary_file_path"))
        save(upload, path)

    monkeypatch.setattr(web_import, "_save", spy)
    client.force_login(supervisor)
    assert client.post("/imports/", {"cases": SimpleUploadedFile("cases.csv", CASES)}).status_code == 302
    assert seen == [False] and not (private_dir / uploads.UPLOADING).exists()


def test_an_interrupted_upload_leaves_no_file(private_dir):
    handler = uploads.PrivateTemporaryFileUploadHandler(RequestFactory().post("/imports/"))
    handler.new_file("cases", "cases.csv", "text/csv", len(CASES))
    handler.receive_data_chunk(CASES[:100], 0)
    spooled = Path(handler.file.temporary_file_path())
    assert spooled.parent == private_dir / uploads.UPLOADING and spooled.exists()
    handler.upload_interrupted()
    assert not spooled.exists()


def test_the_sweep_deletes_what_a_killed_worker_left_spooled_and_nothing_in_progress(private_dir):
    spool = private_dir / uploads.UPLOADING
    uploads.private_dir(private_dir)
    uploads.private_dir(spool)
    left, in_progress = spool / "upload-left.part", spool / "upload-now.part"
    left.write_bytes(CASES)
    in_progress.write_bytes(CASES)
    hours_ago = (timezone.now() - dt.timedelta(hours=7)).timestamp()
    os.utime(left, (hours_ago, hours_ago))
    os.utime(spool, (hours_ago, hours_ago))  # the directory itself is old: it stays all the same
    orphan = private_dir / "not-a-job"
    orphan.mkdir()
    os.utime(orphan, (hours_ago, hours_ago))

    result = web_import.sweep()

    assert result["spooled"] == 1 and result["orphans"] == 1
    assert not left.exists() and in_progress.exists() and spool.is_dir() and not orphan.exists()
    assert web_import.sweep()["spooled"] == 0


def test_the_sweep_runs_without_a_private_directory(settings, tmp_path):
    settings.IMPORT_PRIVATE_DIR = tmp_path / "never-made"
    assert web_import.sweep()["spooled"] == 0
    assert not (tmp_path / "never-made").exists()
