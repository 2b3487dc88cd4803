#!/usr/bin/env bash
# The new-user trial of docs/accuracy.md, through the real server over HTTP: register PEOPLE people from one
# (or REFS) LFW photos each, send four *other* photos of each to /verify, then one photo of each of STRANGERS
# people who were never registered. Prints how many genuine photos were recognised as the right person and how
# many strangers were recognised as anyone.
#
#   scripts/new-user-trial.sh [path/to/rollcall]     (default: target/release/rollcall)
#
# Environment: ROLLCALL_SHARED (default ../shared), PEOPLE (7), REFS (1), STRANGERS (30), SEED (1),
# EMBEDDER (face-api), PORT (18089), and any other ROLLCALL_* setting for the server (e.g. ROLLCALL_THRESHOLD).
set -euo pipefail
BIN=$(realpath "${1:-$(dirname "$0")/../target/release/rollcall}")
cd "$(dirname "$0")/.."
SHARED=${ROLLCALL_SHARED:-../shared}
FACES=$SHARED/fixtures/faces
PEOPLE=${PEOPLE:-7} REFS=${REFS:-1} STRANGERS=${STRANGERS:-30} SEED=${SEED:-1} PORT=${PORT:-18089}
EMBEDDER=${EMBEDDER:-face-api}
PROBES=4
DATA=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$DATA"; }
trap cleanup EXIT

# People with enough photos for REFS references and four probes, and one-photo strangers, drawn with SEED.
pick() {
  python3 - "$FACES" "$SEED" "$1" "$2" <<'PY'
import os, random, sys
root, seed, kind, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
photos = {d: sum(f.endswith(".jpg") for f in os.listdir(os.path.join(root, d))) for d in names}
need = int(kind)
chosen = [d for d in names if (photos[d] >= need if need > 1 else photos[d] == 1)]
random.Random(seed).shuffle(chosen)
print("\n".join(chosen[:count]))
PY
}
mapfile -t people < <(pick $((REFS + PROBES)) "$PEOPLE")
mapfile -t strangers < <(pick 1 "$STRANGERS")

export ROLLCALL_DATA_DIR=$DATA ROLLCALL_MODELS=${ROLLCALL_MODELS:-$SHARED/models} ROLLCALL_EMBEDDER=$EMBEDDER
REGISTER_KEY=$("$BIN" keys create --name trial-register --scope register)
VERIFY_KEY=$("$BIN" keys create --name trial-kiosk --scope verify)
"$BIN" serve --bind 127.0.0.1:$PORT >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.5; done

url=http://127.0.0.1:$PORT
# A photo the server refuses (no clear subject, poor quality) is passed over, as a user would take another.
declare -A used
for p in "${people[@]}"; do
  mapfile -t photos < <(ls "$FACES/$p" | grep '\.jpg$' | sort)
  id= refs=0 n=0
  for f in "${photos[@]}"; do
    [ "$refs" -ge "$REFS" ] && break
    n=$((n + 1))
    if [ -z "$id" ]; then
      code=$(curl -s -o "$DATA/reg.json" -w '%{http_code}' -H "Authorization: Bearer $REGISTER_KEY" \
        -F "first_name=${p%%_*}" -F "last_name=${p#*_}" -F allow_duplicate=true -F "image=@$FACES/$p/$f" "$url/register")
      [ "$code" = 200 ] && id=$(jq -r .id "$DATA/reg.json")
    else
      code=$(curl -s -o "$DATA/reg.json" -w '%{http_code}' -H "Authorization: Bearer $REGISTER_KEY" \
        -F allow_duplicate=true -F "image=@$FACES/$p/$f" "$url/users/$id/faces")
    fi
    if [ "$code" = 200 ]; then refs=$((refs + 1)); else echo "passed over $f: $(jq -r .message "$DATA/reg.json")" >&2; fi
  done
  used[$p]=$n
done

genuine=0 right=0 wrong=0
for p in "${people[@]}"; do
  mapfile -t photos < <(ls "$FACES/$p" | grep '\.jpg$' | sort)
  for f in "${photos[@]:${used[$p]}:PROBES}"; do
    genuine=$((genuine + 1))
    body=$(curl -s -H "Authorization: Bearer $VERIFY_KEY" -F "image=@$FACES/$p/$f" "$url/verify")
    who=$(jq -r 'if .id then "\(.first_name)_\(.last_name)" else "-" end' <<<"$body")
    if [ "$who" = "$p" ]; then right=$((right + 1)); elif [ "$who" != "-" ]; then wrong=$((wrong + 1)); fi
  done
done
accepted_strangers=0
for s in "${strangers[@]}"; do
  body=$(curl -s -H "Authorization: Bearer $VERIFY_KEY" -F "image=@$(ls "$FACES/$s"/*.jpg | head -1)" "$url/verify")
  [ "$(jq -r '.id // empty' <<<"$body")" != "" ] && accepted_strangers=$((accepted_strangers + 1))
done
threshold=$(jq -r '.threshold // empty' <<<"$body")
margin=$(jq -r '.margin // empty' <<<"$body")
echo "people $PEOPLE, references $REFS, seed $SEED, threshold $threshold, margin $margin"
echo "genuine recognised: $right of $genuine (as someone else: $wrong)"
echo "strangers recognised as someone: $accepted_strangers of ${#strangers[@]}"
