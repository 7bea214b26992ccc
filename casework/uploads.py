"""Where an upload waits while its request is read: the private directory, never the system's /tmp.

An upload larger than ``FILE_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB) is spooled to a temporary file for the
length of its request. By Django's default that file is in the system's temporary directory, where a
cases file (which may hold children's names) would sit beside other programs' files, and stay for good if
the worker is killed mid-request. Here it is in ``IMPORT_PRIVATE_DIR/.uploading`` (mode 0700, the file
0600, its name free of anything the client sent), deleted when the request ends, and swept
(``sweep_stale``, with the web import's hourly sweep) if a killed worker left it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler

# Inside IMPORT_PRIVATE_DIR, whose other entries are the web imports' directories (named by a UUID).
UPLOADING = ".uploading"


def private_dir(path: Path) -> None:
    """``path`` made if missing, readable by the server's user alone."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def upload_dir() -> Path:
    return Path(settings.IMPORT_PRIVATE_DIR) / UPLOADING


class PrivateUploadedFile(TemporaryUploadedFile):
    """A ``TemporaryUploadedFile`` in ``upload_dir()``; the suffix is not taken from the client's name."""

    def __init__(
        self,
        name: str,
        content_type: str | None,
        size: int | None,
        charset: str | None,
        content_type_extra: dict[str, bytes] | None = None,
    ) -> None:
        directory = upload_dir()
        private_dir(directory.parent)
        private_dir(directory)
        # 0600, deleted on close (at the end of the request, or when collected).
        file = tempfile.NamedTemporaryFile(prefix="upload-", suffix=".part", dir=directory)  # noqa: SIM115
        UploadedFile.__init__(self, file, name, content_type, size, charset, content_type_extra)


class PrivateTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's handler for uploads over the memory limit, writing to ``PrivateUploadedFile``."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        # The base class's base: sets the field and file names, the content type and the charset.
        super(TemporaryFileUploadHandler, self).new_file(*args, **kwargs)
        self.file = PrivateUploadedFile(
            self.file_name or "upload", self.content_type, 0, self.charset, self.content_type_extra
        )


def sweep_stale(*, older_than: float) -> int:
    """Delete spooled uploads last written before ``older_than`` (a timestamp): a killed worker's leftovers."""
    directory = upload_dir()
    if not directory.is_dir():
        return 0
    deleted = 0
    for path in directory.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < older_than:
                path.unlink()
                deleted += 1
        except FileNotFoundError:  # its request ended meanwhile
            continue
    return deleted
