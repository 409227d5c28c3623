#!/usr/bin/env bash
# Back up the database and the stored images into backups/<UTC timestamp>/ with checksums.
#
#   scripts/backup.sh            (make backup)
#
# Environment (the same variables the app reads):
#   DATABASE_URL   postgres://user:pass@host:port/name -> pg_dump custom format (db.dump);
#                  unset -> the development SQLite file $EYEBRIDGE_VAR_DIR/eyebridge.sqlite3 (db.sqlite3)
#   MEDIA_ROOT     stored fundus photos and heat maps (default $EYEBRIDGE_VAR_DIR/media)
#   BACKUP_ROOT    where backups go (default ./backups)
#
# Order matters: the database first, then the images. An image file is written before the row
# that refers to it commits and is never changed afterwards (content-addressed), so every image a
# dumped row names is already on disk when the tar runs; at worst the tar holds a few extra files.
set -euo pipefail

VAR_DIR="${EYEBRIDGE_VAR_DIR:-var}"
MEDIA="${MEDIA_ROOT:-$VAR_DIR/media}"
ROOT="${BACKUP_ROOT:-backups}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
DEST="$ROOT/$STAMP"
PYTHON="${PYTHON:-python3}"

if [[ -e "$DEST" ]]; then
    echo "backup: $DEST already exists" >&2
    exit 1
fi
mkdir -p "$DEST"
trap 'echo "backup: FAILED, removing incomplete $DEST" >&2; rm -rf "$DEST"' ERR

DB_URL="${DATABASE_URL:-}"
case "$DB_URL" in
    postgres://*|postgresql://*)
        DB_KIND=postgresql
        # Custom format: compressed, restorable table by table, restorable into a fresh database.
        pg_dump --format=custom --no-owner --no-privileges --dbname="$DB_URL" --file="$DEST/db.dump"
        DB_FILE=db.dump
        ;;
    "" | sqlite://*)
        DB_KIND=sqlite
        SQLITE_PATH="${DB_URL#sqlite:///}"
        [[ -n "$DB_URL" ]] || SQLITE_PATH="$VAR_DIR/eyebridge.sqlite3"
        # SQLite's online backup API: a consistent copy even while the app writes.
        "$PYTHON" - "$SQLITE_PATH" "$DEST/db.sqlite3" <<'PY'
import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()
src.close()
PY
        DB_FILE=db.sqlite3
        ;;
    *)
        echo "backup: unsupported DATABASE_URL scheme: ${DB_URL%%:*}" >&2
        exit 1
        ;;
esac

mkdir -p "$MEDIA"
MEDIA_FILES="$(find "$MEDIA" -type f ! -name '*.tmp' | wc -l | tr -d ' ')"
# Half-written uploads (*.tmp, renamed into place when complete) are not part of the state.
tar --create --gzip --file="$DEST/media.tar.gz" --directory="$MEDIA" --exclude='*.tmp' .

{
    echo "created_at=$STAMP"
    echo "database=$DB_KIND"
    echo "database_file=$DB_FILE"
    echo "media_files=$MEDIA_FILES"
    echo "git_commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
} > "$DEST/MANIFEST"
(cd "$DEST" && sha256sum "$DB_FILE" media.tar.gz MANIFEST > SHA256SUMS)
trap - ERR
echo "$DEST"
