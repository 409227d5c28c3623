"""Retention: ``manage.py purge_images [--days N]`` deletes the photo and heatmap files of
screenings older than N days (default ``IMAGE_RETENTION_DAYS``); results stay. Audited, idempotent."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.errors import InvalidInput
from screening.consent import images_purge_older_than


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, days: int | None = None, **options) -> None:
        days = settings.IMAGE_RETENTION_DAYS if days is None else days
        try:
            done = images_purge_older_than(days=days)
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"deleted {done['photos']} photos and {done['heatmaps']} heatmaps older than {days} days"
        )
