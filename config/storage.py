"""The file storage behind uploads: Django's Storage API, so that object storage (S3 through
django-storages) is a `STORAGES` setting away, with one guarantee the stock file system storage
lacks: a file appears under its name only once it is completely written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any

from django.core.files.storage import FileSystemStorage


class AtomicFileSystemStorage(FileSystemStorage):
    """Writes to a temporary file beside the target and renames it into place. Photos are stored
    under the SHA-256 of their bytes and an existing name is never written again, so a crash
    mid-write must not leave a truncated photo under its final name for good."""

    def _save(self, name: str, content: Any) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        if self.directory_permissions_mode is not None:
            old_umask = os.umask(0o777 & ~self.directory_permissions_mode)
            try:
                os.makedirs(directory, self.directory_permissions_mode, exist_ok=True)
            finally:
                os.umask(old_umask)
        else:
            os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in content.chunks():
                    handle.write(chunk)
            os.chmod(tmp, self.file_permissions_mode or 0o644)
            os.replace(tmp, full_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return str(name).replace("\\", "/")
