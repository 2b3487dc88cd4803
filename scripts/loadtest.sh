#!/usr/bin/env bash
# Load test of POST /verify (docs/reliability.md): one server, then two servers over one MariaDB
# database behind nginx, each at 1, 4, 16 and 64 clients, driven by oha; prints a table of
# throughput, p50/p99 latency, status counts, the 503 share and the server log's lines.
#
# Loopback only, bounded: every run lasts LOADTEST_SECS seconds, the whole script a few
# minutes; it drops the database it made and ends the processes it started (by their PIDs).
#
#   scripts/loadtest.sh                      # release binary, oha from target/tools or PATH
#   LOADTEST_SECS=20 LOADTEST_CLIENTS="1 4 16 64" LOADTEST_SETUPS="one two" scripts/loadtest.sh
#
# Needs: a release build (cargo build --release -p rollcall), oha (cargo install oha --locked
# --root target/tools), nginx (Debian's nginx-light) for the two-server half, curl, python3,
# the mysql client, and MariaDB on LOADTEST_DB_HOST:LOADTEST_DB_PORT (root, no password).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${ROLLCALL_BIN:-target/release/rollcall}
OHA=${OHA:-$( [ -x target/tools/bin/oha ] && echo target/tools/bin/oha || command -v oha || true)}
SHARED=${ROLLCALL_SHARED:-../shared}
DB_HOST=${LOADTEST_DB_HOST:-127.0.0.1}
DB_PORT=${LOADTEST_DB_PORT:-3306}
SECS=${LOADTEST_SECS:-15}
CLIENTS=${LOADTEST_CLIENTS:-"1 4 16 64"}
SETUPS=${LOADTEST_SETUPS:-"one two"}
# The photo every client sends: a registered person (200, checked in once per cooldown).
PHOTO=${LOADTEST_PHOTO:-$SHARED/fixtures/faces/Tony_Blair/Tony_Blair_0102.jpg}

[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p rollcall" >&2; exit 2; }
[ -n "$OHA" ] && [ -x "$OHA" ] || { echo "no oha: cargo install oha --locked --root target/tools" >&2; exit 2; }
[ "$SECS" -ge 1 ] && [ "$SECS" -le 120 ] || { echo "LOADTEST_SECS: 1 to 120" >&2; exit 2; }
for c in $CLIENTS; do
  [ "$c" -ge 1 ] && [ "$c" -le 256 ] || { echo "LOADTEST_CLIENTS: each 1 to 256" >&2; exit 2; }
done
case " $SETUPS " in *" two "*) command -v nginx >/dev/null || { echo "no nginx (apt-get install nginx-light), or LOADTEST_SETUPS=one" >&2; exit 2; } ;; esac

WORK=$(mktemp -d)
DB=rollcall_load_$(date +%s)_$$
URL="mysql://root@$DB_HOST:$DB_PORT/$DB"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  mysql -h "$DB_HOST" -P "$DB_PORT" -u root -e "DROP DATABASE IF EXISTS \`$DB\`" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

rollcall() {
  "$BIN" --data-dir "$WORK/data" --database-url "$URL" --models "$SHARED/models" \
    --embedder face-api "$@"
}

# A server on a free port (set in PORT), its log in $WORK/<name>.log; waits for /health (60 s
# at most).
start_server() {
  local name=$1 port
  port=$(free_port)
  # exec: the PID kept is the server's own, not a subshell's that would leave it running.
  (exec "$BIN" --data-dir "$WORK/data" --database-url "$URL" --models "$SHARED/models" \
    --embedder face-api serve --bind "127.0.0.1:$port" --anonymous-verify >"$WORK/$name.log" 2>&1) &
  PIDS+=($!)
  for _ in $(seq 1 120); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/health"; then PORT=$port; return; fi
    sleep 0.5
  done
  echo "server $name did not come up:" >&2; cat "$WORK/$name.log" >&2; exit 1
}

# nginx in front of the given ports (round robin), in the foreground of its own PID; its port
# in PORT.
start_nginx() {
  local port upstreams=""
  port=$(free_port)
  for p in "$@"; do upstreams+="    server 127.0.0.1:$p;"$'\n'; done
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    upstream rollcall {
$upstreams        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 10m;
        location / {
            proxy_pass http://rollcall;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_next_upstream error timeout http_503;
        }
    }
}
EOF
  (exec nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >/dev/null 2>&1) &
  PIDS+=($!)
  for _ in $(seq 1 40); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/health"; then PORT=$port; return; fi
    sleep 0.25
  done
  echo "nginx did not come up:" >&2; cat "$WORK/nginx/error.log" >&2; exit 1
}

log_lines() { cat "$WORK"/server-*.log 2>/dev/null | wc -l; }

# One oha run of SECS seconds at $2 clients against port $1, with a sampler beside it that
# checks every 503 it sees for Retry-After; one JSON line of results on stdout.
run() {
  local port=$1 clients=$2 setup=$3 before after load_before
  before=$(log_lines)
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  (
    missing=0 seen=0
    end=$((SECONDS + SECS))
    while [ $SECONDS -lt $end ]; do
      head=$(curl -s -o /dev/null -D - -F "image=@$PHOTO" "http://127.0.0.1:$port/verify" || true)
      if printf '%s' "$head" | head -1 | grep -q ' 503'; then
        seen=$((seen + 1))
        if ! printf '%s' "$head" | grep -qi '^retry-after:'; then
          missing=$((missing + 1))
          printf '%s\n' "$head" >&2
        fi
      fi
      sleep 0.2
    done
    echo "$seen $missing" >"$WORK/sampler"
  ) &
  local sampler=$!
  "$OHA" -z "${SECS}s" -w -c "$clients" --no-tui --output-format json --worker-threads 1 \
    --stats-success-breakdown \
    -m POST -F "image=@$PHOTO" "http://127.0.0.1:$port/verify" >"$WORK/oha.json"
  wait "$sampler" || true
  after=$(log_lines)
  python3 - "$WORK/oha.json" "$setup" "$clients" "$((after - before))" "$load_before" \
    "$(cut -d' ' -f1 /proc/loadavg)" "$(cat "$WORK/sampler")" <<'EOF'
import json, sys
path, setup, clients, lines, load_before, load_after, sampled = sys.argv[1:8]
r = json.load(open(path))
codes = {str(k): v for k, v in r.get("statusCodeDistribution", {}).items()}
errors = sum(r.get("errorDistribution", {}).values())
total = sum(codes.values())
pct = r.get("latencyPercentiles", {})
ok = r.get("latencyPercentilesSuccessful", {})
secs = r["summary"]["total"] or 1
ms = lambda p, k: (p.get(k) or 0) * 1000
seen, missing = sampled.split()
print(json.dumps({
    "setup": setup, "clients": int(clients), "answers": total, "secs": secs,
    "rps": total / secs, "ok_rps": codes.get("200", 0) / secs,
    "p50_ms": ms(pct, "p50"), "p99_ms": ms(pct, "p99"),
    "ok_p50_ms": ms(ok, "p50"), "ok_p99_ms": ms(ok, "p99"),
    "codes": codes, "errors": errors, "log_lines": int(lines),
    "load": f"{load_before}→{load_after}",
    "sampled_503": int(seen), "sampled_503_without_retry_after": int(missing),
}))
EOF
}

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
mysql -h "$DB_HOST" -P "$DB_PORT" -u root -e "CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
rollcall migrate >/dev/null 2>&1 || true
for photo in Tony_Blair/Tony_Blair_0048 Hugo_Chavez/Hugo_Chavez_0002 Silvio_Berlusconi/Silvio_Berlusconi_0006 \
             Wen_Jiabao/Wen_Jiabao_0001 David_Beckham/David_Beckham_0001; do
  person=${photo%%/*}
  rollcall register --first-name "${person%%_*}" --last-name "${person#*_}" \
    "$SHARED/fixtures/faces/$photo.jpg" >/dev/null 2>"$WORK/register.err" ||
    echo "# not registered: $photo: $(tail -1 "$WORK/register.err")" >&2
done

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
start_server server-a
A=$PORT
for setup in $SETUPS; do
  case $setup in
    one) target=$A ;;
    two)
      start_server server-b
      B=$PORT
      start_nginx "$A" "$B"
      target=$PORT
      ;;
    *) echo "unknown setup $setup" >&2; exit 2 ;;
  esac
  for c in $CLIENTS; do
    run "$target" "$c" "$setup" >"$WORK/row.json"
    cat "$WORK/row.json" >&2
    cat "$WORK/row.json" >>"$RESULTS"
  done
done

python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| servers | clients | 200/s | 200: p50 / p99 ms | answers/s | all: p50 / p99 ms | 200 | 404 | 503 | other | 503 share | log lines | load avg |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    c = r["codes"]
    known = sum(c.get(k, 0) for k in ("200", "404", "503"))
    other = r["answers"] - known + r["errors"]
    share = c.get("503", 0) / r["answers"] if r["answers"] else 0
    servers = {"one": "1", "two": "2 (nginx)"}[r["setup"]]
    print(f"| {servers} | {r['clients']} | {r['ok_rps']:.1f} | {r['ok_p50_ms']:.0f} / {r['ok_p99_ms']:.0f} "
          f"| {r['rps']:.1f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} "
          f"| {c.get('200', 0)} | {c.get('404', 0)} | {c.get('503', 0)} | {other} | {share:.0%} "
          f"| {r['log_lines']} | {r['load']} |")
sampled = sum(r["sampled_503"] for r in rows)
missing = sum(r["sampled_503_without_retry_after"] for r in rows)
print(f"\n503s sampled beside oha: {sampled}, without Retry-After: {missing}")
EOF
