"""Photos go through Django's Storage API (object storage is a setting away), written atomically."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from config.errors import InvalidInput
from config.storage import AtomicFileSystemStorage
from screening import uploads


def test_uploads_use_the_configured_default_storage():
    default_storage.exists("x")  # resolve the lazy object
    assert isinstance(default_storage._wrapped, AtomicFileSystemStorage)


def test_identical_bytes_are_stored_once_and_read_back(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    first = uploads.store_bytes(b"\x89PNG" + b"x" * 100, suffix=".png", subdir="heatmaps")
    again = uploads.store_bytes(b"\x89PNG" + b"x" * 100, suffix=".png", subdir="heatmaps")
    assert first.created and not again.created and first.path == again.path
    assert uploads.read_stored(first.path) == b"\x89PNG" + b"x" * 100
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [first.path.split("/")[-1]]


def test_a_write_that_fails_midway_leaves_nothing_under_the_final_name(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path)

    class Broken(ContentFile):
        def chunks(self, chunk_size=None):
            yield b"half a photo"
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        storage.save("fundus/ab/photo.jpg", Broken(b""))
    assert not storage.exists("fundus/ab/photo.jpg")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "fundus/../../x.jpg", "", "a"])
def test_a_tampered_stored_path_is_refused_before_the_storage(path):
    with pytest.raises(InvalidInput):
        uploads.open_stored(path)
