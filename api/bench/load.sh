#!/usr/bin/env bash
# Load test of POST /v1/authorize on the embedded SQLite default, beside a
# minimal Echo + GORM + SQLite baseline, on this machine. Installs wrk from
# Debian if missing. Prints one line per run: path, requests/s, p50, p99,
# statuses, resident memory.
#
#   bash api/bench/load.sh                 # 60000 requests per path, 10 s runs
#   N=20000 DURATION=5s bash api/bench/load.sh
#   FILLER=1000000 bash api/bench/load.sh  # grow web_users first (latency vs data)
#   PATHS=match bash api/bench/load.sh     # only some paths (match, register)
set -euo pipefail
cd "$(dirname "$0")/../.."

N="${N:-60000}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
FILLER="${FILLER:-0}"
PATHS="${PATHS:-match register}"
WORK="${WORK:-$(mktemp -d)}"
PORT=18080
BASE_PORT=18081

if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
go build -o "$WORK/pairingd" ./cmd/pairingd
go build -o "$WORK/seed" ./api/bench/seed
go build -o "$WORK/baseline" ./api/bench/baseline

pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 did not open"; exit 1; }

run_wrk() { # name port requests-file
  local out
  out=$(THREADS="$THREADS" REQUESTS="$3" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
    -s api/bench/authorize.lua "http://127.0.0.1:$2")
  local rps p50 p99 statuses
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  statuses=$(grep '^status' <<<"$out" | awk '{s[$2]+=$3} END {for (k in s) printf "%s%s ", k, s[k]}')
  printf '%-22s %10s req/s  p50 %-8s p99 %-8s %s' "$1" "$rps" "$p50" "$p99" "$statuses"
  # Each request spends its PIN: a wrk thread that runs out of its share
  # of the N PINs sends spent ones again (422 pin_used, not the path being
  # measured); authorize.lua counts them.
  local reused
  reused=$(awk '$1=="reused" {n+=$2} END {print n+0}' <<<"$out")
  if [ "$reused" -gt 0 ]; then printf ' (%s requests reused a spent PIN: raise N)' "$reused"; fi
}

rss() { awk '/VmRSS/ {printf "rss %d MB", $2/1024}' "/proc/$1/status"; }

echo "machine: $(nproc) cores, $(go version | awk '{print $3}'), wrk -t$THREADS -c$CONNS -d$DURATION, filler rows $FILLER"
for path in $PATHS; do
  db="$WORK/$path.db"
  "$WORK/seed" -db "$db" -n "$N" -path "$path" -filler "$FILLER" -out "$WORK/$path.lua" 2>&1 | sed 's/^/  /'
  PAIRINGD_DATABASE_DSN="$db" PAIRINGD_SERVER_LISTEN="127.0.0.1:$PORT" PAIRINGD_LOG_LEVEL=warn \
    "$WORK/pairingd" serve 2>"$WORK/$path.log" &
  pid=$!; pids+=("$pid")
  wait_port $PORT
  run_wrk "pairingd $path" $PORT "$WORK/$path.lua"; echo "  $(rss $pid)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

"$WORK/baseline" -db "$WORK/baseline.db" -listen "127.0.0.1:$BASE_PORT" -rows "$N" 2>"$WORK/baseline.log" &
pid=$!; pids+=("$pid")
wait_port $BASE_PORT
run_wrk "baseline (1 read+1 update)" $BASE_PORT "$WORK/${PATHS%% *}.lua"; echo "  $(rss $pid)"
echo "work dir: $WORK"
