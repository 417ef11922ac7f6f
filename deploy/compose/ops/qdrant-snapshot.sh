#!/bin/sh
# Snapshot one collection through Qdrant's snapshot API, download it, check its sha256
# against the checksum Qdrant reports, write NAME.sha256 beside it, and delete Qdrant's own
# copy. Runs in the `ops` service (curl image, internal network):
#   docker compose --profile ops run --rm ops /ops/qdrant-snapshot.sh
# Env: QDRANT_API_KEY; QDRANT_URL (default http://qdrant:6333); COLLECTION (default
# vraagbaak); BACKUP_DIR (default /backups).
set -eu
url="${QDRANT_URL:-http://qdrant:6333}"
col="${COLLECTION:-vraagbaak}"
dir="${BACKUP_DIR:-/backups}"
auth="api-key: ${QDRANT_API_KEY:?QDRANT_API_KEY is not set}"

resp=$(curl -fsS -X POST -H "$auth" "$url/collections/$col/snapshots?wait=true")
name=$(printf '%s' "$resp" | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p')
sum=$(printf '%s' "$resp" | sed -n 's/.*"checksum": *"\([0-9a-f]*\)".*/\1/p')
[ -n "$name" ] && [ -n "$sum" ] || { echo "unexpected answer from Qdrant: $resp" >&2; exit 1; }

curl -fsS -H "$auth" -o "$dir/$name.part" "$url/collections/$col/snapshots/$name"
mv "$dir/$name.part" "$dir/$name"
printf '%s  %s\n' "$sum" "$name" > "$dir/$name.sha256"
(cd "$dir" && sha256sum -c "$name.sha256")
curl -fsS -X DELETE -H "$auth" "$url/collections/$col/snapshots/$name?wait=true" >/dev/null
echo "snapshot $dir/$name (sha256 $sum)"
