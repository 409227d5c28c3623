#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh, after verifying its checksums.
#
#   scripts/restore.sh backups/<timestamp>      (make restore BACKUP=backups/<timestamp>)
#
# Environment:
#   TARGET_DATABASE_URL  database to restore into (default DATABASE_URL). For PostgreSQL, create it
#                        first (createdb); existing EyeBridge tables in it are dropped and replaced
#                        (pg_restore --clean), in one transaction: all or nothing.
#   TARGET_MEDIA_ROOT    folder to restore the images into (default MEDIA_ROOT, or var/media)
set -euo pipefail

SRC="${1:?usage: scripts/restore.sh <backup dir>}"
VAR_DIR="${EYEBRIDGE_VAR_DIR:-var}"
TARGET_DB="${TARGET_DATABASE_URL:-${DATABASE_URL:-}}"
TARGET_MEDIA="${TARGET_MEDIA_ROOT:-${MEDIA_ROOT:-$VAR_DIR/media}}"

[[ -f "$SRC/SHA256SUMS" && -f "$SRC/MANIFEST" ]] || { echo "restore: $SRC is not a backup" >&2; exit 1; }
# Refuse a damaged or altered backup before touching anything.
(cd "$SRC" && sha256sum --check --strict --quiet SHA256SUMS) || { echo "restore: checksum mismatch in $SRC" >&2; exit 1; }
DB_KIND="$(sed -n 's/^database=//p' "$SRC/MANIFEST")"

case "$DB_KIND" in
    postgresql)
        case "$TARGET_DB" in
            postgres://*|postgresql://*) ;;
            *) echo "restore: a PostgreSQL backup needs TARGET_DATABASE_URL=postgres://..." >&2; exit 1 ;;
        esac
        pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error \
            --dbname="$TARGET_DB" "$SRC/db.dump"
        ;;
    sqlite)
        TARGET_PATH="${TARGET_DB#sqlite:///}"
        [[ -n "$TARGET_DB" ]] || TARGET_PATH="$VAR_DIR/eyebridge.sqlite3"
        mkdir -p "$(dirname "$TARGET_PATH")"
        cp "$SRC/db.sqlite3" "$TARGET_PATH.restoring"
        mv "$TARGET_PATH.restoring" "$TARGET_PATH"
        ;;
    *)
        echo "restore: unknown database kind '$DB_KIND' in MANIFEST" >&2; exit 1 ;;
esac

mkdir -p "$TARGET_MEDIA"
tar --extract --gzip --file="$SRC/media.tar.gz" --directory="$TARGET_MEDIA" --no-same-owner
EXPECTED="$(sed -n 's/^media_files=//p' "$SRC/MANIFEST")"
echo "restored $DB_KIND database and $EXPECTED image files from $SRC"
