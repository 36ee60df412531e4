#!/usr/bin/env bash
# One wrk against N pairingd instances on one PostgreSQL database, after a
# load.sh run has seeded it: for comparing instance counts, pool sizes and
# GOMAXPROCS quickly, several rounds in a row. Prints requests/s, p99,
# the servers' CPU per request and, per request, the database's commits,
# rollbacks, tuples returned, fetched, inserted and updated
# (pg_stat_database).
#
#   WORK=/tmp/tmp.XXXX bash api/bench/instances.sh 1 10 2   # 1 instance, 10 connections, GOMAXPROCS 2
#   WORK=/tmp/tmp.XXXX bash api/bench/instances.sh 2 5 1    # 2 instances, 5 connections and GOMAXPROCS 1 each
#   PATHNAME=register ...                                   # the register data (default: match;
#                                                           # links: GET /v1/links/{user_id})
#   BASELINE=1 ...                                          # the bare baseline instead (api/bench/baseline
#                                                           # on load.sh's bench_baseline, each instance on
#                                                           # its own share of the rows)
#
# WORK is the work dir load.sh printed; its PostgreSQL seed of the path
# (bench_seed_PATH, left by load.sh) must be the last one that run made,
# since the requests file and the database go together.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=$1 conns=$2 procs=$3 path=${PATHNAME:-match}
: "${WORK:?WORK: the work dir of a load.sh run}"
PG_ADMIN_DSN="${PG_ADMIN_DSN:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
SECRET="load-test-secret-not-for-production-0123456789"
base=${PG_ADMIN_DSN%%\?*}
dsn="${base%/*}/bench_instances?sslmode=disable"
pg() { PGOPTIONS='-c client_min_messages=warning' psql "$PG_ADMIN_DSN" -qAtc "$1"; }
pids=() ports=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
if [ -n "${BASELINE:-}" ]; then
  db=bench_baseline dsn="${base%/*}/bench_baseline?sslmode=disable"
  rows=$(PGOPTIONS='-c client_min_messages=warning' psql "$dsn" -qAtc "SELECT count(*) FROM rows")
  go build -o "$WORK/baseline" ./api/bench/baseline
else
  db=bench_instances
  pg "DROP DATABASE IF EXISTS bench_instances WITH (FORCE)"
  pg "CREATE DATABASE bench_instances TEMPLATE bench_seed_$path"
fi
for i in $(seq 1 "$n"); do
  port=$((18090 + i)); ports+=($port)
  if [ -n "${BASELINE:-}" ]; then
    GOMAXPROCS="$procs" "$WORK/baseline" -driver postgres -db "$dsn" -conns "$conns" -listen 127.0.0.1:$port \
      -rows "$rows" -offset $(( (i - 1) * rows / n )) 2>"$WORK/instances.$i.log" &
  else
    env PAIRINGD_DATABASE_DRIVER=postgres PAIRINGD_DATABASE_DSN="$dsn" PAIRINGD_SERVER_LISTEN=127.0.0.1:$port \
      PAIRINGD_LOG_LEVEL=warn PAIRINGD_PAIRING_SECRET=$SECRET PAIRINGD_DATABASE_MAX_OPEN_CONNS="$conns" GOMAXPROCS="$procs" \
      "$WORK/now/pairingd" serve 2>"$WORK/instances.$i.log" &
  fi
  pids+=($!)
done
for p in "${ports[@]}"; do
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
stats() { pg "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = '$db'" | tr '|' ' '; }
ticks() { local s=0 p; for p in "${pids[@]}"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }
s0=$(stats); c0=$(ticks)
script=api/bench/authorize.lua requests="$WORK/pg-$path-seed.lua"
[ "$path" = links ] && script=api/bench/links.lua requests="$WORK/pg-links.lua"
PORTS=$(IFS=,; echo "${ports[*]}") THREADS=2 REQUESTS="$requests" \
  wrk -t2 -c32 -d"${DURATION:-8s}" --latency -s "$script" "http://127.0.0.1:${ports[0]}" >"$WORK/instances.wrk"
c1=$(ticks); sleep 0.5; s1=$(stats)
reqs=$(awk '/requests in/ {print $1}' "$WORK/instances.wrk")
printf '%sx%s conns %s GOMAXPROCS %s: %s req/s  p99 %s  cpu/req %s ms  per request: %s (commits rollbacks returned fetched inserted updated)\n' \
  "${BASELINE:+baseline }" "$n" "$conns" "$procs" "$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$WORK/instances.wrk")" \
  "$(awk '$1=="99%" {print $2}' "$WORK/instances.wrk")" \
  "$(awk -v t=$((c1 - c0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f", t / hz * 1000 / n}')" \
  "$(paste -d' ' <(tr ' ' '\n' <<<"$s0") <(tr ' ' '\n' <<<"$s1") | awk -v n="$reqs" '{printf "%.2f ", ($2 - $1) / n}')"
