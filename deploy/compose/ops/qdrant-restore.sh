#!/bin/sh
# Restore a collection from a snapshot file made by qdrant-snapshot.sh: check the file
# against NAME.sha256, then upload it with the same checksum (Qdrant checks it again) and
# priority=snapshot, so the snapshot's contents replace what the collection holds.
#   docker compose --profile ops run --rm ops '/ops/qdrant-restore.sh /backups/NAME'
# AFTERWARDS replay the erasures made since the snapshot (deploy/README.md, "Erasure").
set -eu
file="${1:?usage: qdrant-restore.sh /backups/SNAPSHOT}"
url="${QDRANT_URL:-http://qdrant:6333}"
col="${COLLECTION:-vraagbaak}"
auth="api-key: ${QDRANT_API_KEY:?QDRANT_API_KEY is not set}"

name=$(basename "$file")
(cd "$(dirname "$file")" && sha256sum -c "$name.sha256")
sum=$(cut -d' ' -f1 "$file.sha256")
curl -fsS -X POST -H "$auth" -F "snapshot=@$file" \
  "$url/collections/$col/snapshots/upload?priority=snapshot&wait=true&checksum=$sum"
echo
echo "restored $col from $name; now replay erasures made after the snapshot"
