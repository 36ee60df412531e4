#!/usr/bin/env bash
# Load test of pairingd on the embedded SQLite default, beside a minimal
# Echo + GORM + SQLite baseline, on this machine. Installs wrk from Debian
# if missing. Prints one line per run: what, requests/s, p50, p99,
# statuses, resident memory.
#
# Paths: match and register (POST /v1/authorize, each request spends its
# own PIN), links (GET /v1/links/{user_id} over linked users). The
# baseline answers the same requests with one indexed read and one
# conditional update (authorize) or one indexed read (links).
#
#   bash api/bench/load.sh                 # 60000 requests per path, 10 s runs
#   N=20000 DURATION=5s bash api/bench/load.sh
#   FILLER=1000000 bash api/bench/load.sh  # grow web_users first (latency vs data)
#   PATHS=match bash api/bench/load.sh     # only some paths (match, register, links)
#   BEFORE=157492e bash api/bench/load.sh  # also the build of that revision,
#                                          # interleaved with this one, same run
set -euo pipefail
cd "$(dirname "$0")/../.."

N="${N:-60000}"
LINKS_N="${LINKS_N:-2000}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
FILLER="${FILLER:-0}"
PATHS="${PATHS:-match register links}"
BEFORE="${BEFORE:-}"
WORK="${WORK:-$(mktemp -d)}"
PORT=18080
BASE_PORT=18081

if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
builds=()
if [ -n "$BEFORE" ]; then
  rev=$(git rev-parse --short "$BEFORE")
  mkdir -p "$WORK/src-$rev" "$WORK/$rev"
  git archive "$rev" | tar -x -C "$WORK/src-$rev"
  (cd "$WORK/src-$rev" && go build -o "$WORK/$rev/pairingd" ./cmd/pairingd && go build -o "$WORK/$rev/seed" ./api/bench/seed)
  builds+=("$rev")
fi
mkdir -p "$WORK/now"
go build -o "$WORK/now/pairingd" ./cmd/pairingd
go build -o "$WORK/now/seed" ./api/bench/seed
go build -o "$WORK/baseline" ./api/bench/baseline
builds+=(now)

pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 did not open"; exit 1; }

run_wrk() { # label port script requests-file
  local out
  out=$(THREADS="$THREADS" REQUESTS="$4" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
    -s "$3" "http://127.0.0.1:$2")
  local rps p50 p99 statuses
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  statuses=$( (grep "^status" <<<"$out" || true) | awk '{s[$2]+=$3} END {for (k in s) printf "%s%s ", k, s[k]}')
  printf '%-28s %10s req/s  p50 %-8s p99 %-8s %s' "$1" "$rps" "$p50" "$p99" "$statuses"
  # Each authorize spends its PIN: a wrk thread that runs out of its share
  # of the N PINs sends spent ones again (422 pin_used, not the path being
  # measured); authorize.lua counts them.
  local reused
  reused=$(awk '$1=="reused" {n+=$2} END {print n+0}' <<<"$out")
  if [ "$reused" -gt 0 ]; then printf ' (%s requests reused a spent PIN: raise N)' "$reused"; fi
}

rss() { awk '/VmRSS/ {printf "rss %d MB", $2/1024}' "/proc/$1/status"; }

# links_requests DB BUILD AUTHORIZE_LUA OUT: the linked users of a seeded
# database (through the CLI, so any build can be measured) and its key.
links_requests() {
  {
    head -n1 "$3"
    echo "users = {"
    PAIRINGD_DATABASE_DSN="$1" PAIRINGD_LOG_LEVEL=error "$WORK/$2/pairingd" links list --limit 1000 |
      awk 'NR > 1 && $1 != "next" {printf "%c%s%c,\n", 34, $1, 34}'
    echo "}"
  } >"$4"
}

echo "machine: $(nproc) cores, $(go version | awk '{print $3}'), wrk -t$THREADS -c$CONNS -d$DURATION, filler rows $FILLER"
for path in $PATHS; do
  for b in "${builds[@]}"; do
    db="$WORK/$b-$path.db"
    label="pairingd $path"
    [ "$b" = now ] || label="pairingd@$b $path"
    script=api/bench/authorize.lua
    requests="$WORK/$b-$path.lua"
    if [ "$path" = links ]; then
      "$WORK/$b/seed" -db "$db" -n "$LINKS_N" -path match -filler "$FILLER" -out "$WORK/$b-links-seed.lua" 2>&1 | sed 's/^/  /'
      links_requests "$db" "$b" "$WORK/$b-links-seed.lua" "$requests"
      script=api/bench/links.lua
    else
      "$WORK/$b/seed" -db "$db" -n "$N" -path "$path" -filler "$FILLER" -out "$requests" 2>&1 | sed 's/^/  /'
    fi
    PAIRINGD_DATABASE_DSN="$db" PAIRINGD_SERVER_LISTEN="127.0.0.1:$PORT" PAIRINGD_LOG_LEVEL=warn \
      "$WORK/$b/pairingd" serve 2>"$WORK/$b-$path.log" &
    pid=$!; pids+=("$pid")
    wait_port $PORT
    run_wrk "$label" $PORT "$script" "$requests"; echo "  $(rss $pid)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done

"$WORK/baseline" -db "$WORK/baseline.db" -listen "127.0.0.1:$BASE_PORT" -rows "$N" 2>"$WORK/baseline.log" &
pid=$!; pids+=("$pid")
wait_port $BASE_PORT
auth_path=""
for path in $PATHS; do
  if [ "$path" = links ]; then
    run_wrk "baseline links (1 read)" $BASE_PORT api/bench/links.lua "$WORK/now-links.lua"; echo "  $(rss $pid)"
  elif [ -z "$auth_path" ]; then
    auth_path=$path
    run_wrk "baseline (1 read+1 update)" $BASE_PORT api/bench/authorize.lua "$WORK/now-$path.lua"; echo "  $(rss $pid)"
  fi
done
echo "work dir: $WORK"
