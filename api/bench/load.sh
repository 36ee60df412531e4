#!/usr/bin/env bash
# Load test of pairingd beside minimal Echo + GORM baselines, on this
# machine, in one run: SQLite, PostgreSQL with one instance, PostgreSQL
# with two instances on one database (one wrk, half of its threads and
# connections to each). Installs wrk from Debian if missing. Prints one line per run:
# what, requests/s, p50, p99, statuses, server CPU per request, database
# CPU per request (PostgreSQL: the backends of the run's database), resident
# memory.
#
# Paths: match and register (POST /v1/authorize, each request spends its
# own PIN), links (GET /v1/links/{user_id} over linked users). The
# baselines answer the same requests with one indexed read and one
# conditional update (authorize) or one indexed read (links), on each
# engine. Runs are interleaved per path and engine: builds, then the
# baseline of that engine.
#
#   bash api/bench/load.sh                 # every engine, 60000 requests per path, 10 s runs
#   N=80000 PG_N=40000 DURATION=8s bash api/bench/load.sh
#   ENGINES=sqlite bash api/bench/load.sh  # some engines only (sqlite, pg, pg2)
#   PATHS=match bash api/bench/load.sh     # some paths only (match, register, links)
#   FILLER=1000000 bash api/bench/load.sh  # grow web_users first (latency vs data)
#   BEFORE=157492e bash api/bench/load.sh  # also the builds of these revisions
#                                          # (space-separated), interleaved with
#                                          # this one, same run, same seeded data
#   BEFORE_PG=main                         # other revisions for the PostgreSQL
#                                          # runs (default: BEFORE)
#
# Each path is seeded once per engine and every build runs on its own copy
# of that data: on SQLite seeded by the first build (a newer build migrates
# the copy forward when it starts), on PostgreSQL by this tree's seed (older
# seeds had no -driver); an older build gets its copy with the newer
# migrations undone (pg_roll_back: only migrations that add tables or
# add and replace indexes).
#
# PostgreSQL: PG_ADMIN_DSN (default: the local server as postgres) must
# be allowed to create databases; each run gets a fresh copy of a seeded
# database (CREATE DATABASE ... TEMPLATE). Without a server there, the
# PostgreSQL engines are skipped with a note. pairingd and the baseline
# both get PG_CONNS connections per process (database.max_open_conns).
# Two instances are the same configuration run twice, as an operator adds
# one: PG2_CONNS connections each (default: PG_CONNS) and GOMAXPROCS
# PG2_PROCS each (default: unset, the Go runtime's own). The bare
# baseline runs twice too (pg2), each process on its own half of the
# rows. PG2_CONNS=5 PG2_PROCS=1 splits one instance's pool and cores
# between the two instead (what runs 5 and 6 in docs/performance.md did).
set -euo pipefail
cd "$(dirname "$0")/../.."

N="${N:-60000}"
PG_N="${PG_N:-$N}"
LINKS_N="${LINKS_N:-2000}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
FILLER="${FILLER:-0}"
PATHS="${PATHS:-match register links}"
ENGINES="${ENGINES:-sqlite pg pg2}"
BEFORE="${BEFORE:-}"
BEFORE_PG="${BEFORE_PG-$BEFORE}"
PG_ADMIN_DSN="${PG_ADMIN_DSN:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
PG_CONNS="${PG_CONNS:-10}"
PG2_CONNS="${PG2_CONNS:-$PG_CONNS}"
PG2_PROCS="${PG2_PROCS:-}"
WORK="${WORK:-$(mktemp -d)}"
PORT=18080
PORT2=18082
BASE_PORT=18081
# The PIN key of the PostgreSQL runs (seed and servers must agree).
SECRET="load-test-secret-not-for-production-0123456789"
HZ=$(getconf CLK_TCK)

if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
if [[ " $ENGINES " == *" pg"* ]] && ! psql "$PG_ADMIN_DSN" -Atc 'select 1' >/dev/null 2>&1; then
  echo "note: no PostgreSQL at PG_ADMIN_DSN; running SQLite only"
  ENGINES=sqlite
fi
build_rev() { # REV: build pairingd and seed of revision REV into $WORK/REV
  local rev; rev=$(git rev-parse --short "$1")
  if [ ! -x "$WORK/$rev/pairingd" ]; then
    mkdir -p "$WORK/src-$rev" "$WORK/$rev"
    git archive "$rev" | tar -x -C "$WORK/src-$rev"
    (cd "$WORK/src-$rev" && go build -o "$WORK/$rev/pairingd" ./cmd/pairingd && go build -o "$WORK/$rev/seed" ./api/bench/seed)
  fi
  echo "$rev"
}
builds_sqlite=() builds_pg=()
for r in $BEFORE; do builds_sqlite+=("$(build_rev "$r")"); done
for r in $BEFORE_PG; do builds_pg+=("$(build_rev "$r")"); done
mkdir -p "$WORK/now"
go build -o "$WORK/now/pairingd" ./cmd/pairingd
go build -o "$WORK/now/seed" ./api/bench/seed
go build -o "$WORK/baseline" ./api/bench/baseline
builds_sqlite+=(now) builds_pg+=(now)

pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 did not open"; exit 1; }

# pg_dsn DB: the DSN of database DB on the admin DSN's server.
pg_dsn() {
  local base=${PG_ADMIN_DSN%%\?*} q=""
  [[ $PG_ADMIN_DSN == *\?* ]] && q="?${PG_ADMIN_DSN#*\?}"
  echo "${base%/*}/$1$q"
}
pg() { PGOPTIONS='-c client_min_messages=warning' psql "$PG_ADMIN_DSN" -qAtc "$1"; }
# pg_fresh DB [TEMPLATE]: drop and create DB (as a copy of TEMPLATE).
pg_fresh() {
  pg "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
  if [ -n "${2:-}" ]; then pg "CREATE DATABASE $1 TEMPLATE $2"; else pg "CREATE DATABASE $1"; fi
}

# cpu_ticks PID...: user + system CPU ticks of the processes.
cpu_ticks() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
# db_ticks DB: "pid ticks" of every PostgreSQL backend connected to DB,
# found by its process title (no query, so sampling it costs little).
db_ticks() {
  [ -n "${1:-}" ] || return 0
  local p
  for p in $(pgrep -u postgres -f -- " $1 (127\.0\.0\.1|\[local\]|::1)" || true); do
    awk -v p="$p" '{print p, $14 + $15}' "/proc/$p/stat" 2>/dev/null || true
  done
  return 0
}
# db_watch DB OUT: db_ticks every 0.2 s until killed. A backend's CPU is
# lost when it exits, and backends do exit at the end of a run: when wrk
# disconnects, the requests still waiting on the database are cancelled,
# and the driver closes those connections. Their last sample keeps them.
db_watch() { while :; do db_ticks "$1"; sleep 0.2; done >"$2"; }
# db_delta BEFORE SAMPLES: CPU ticks the backends spent since BEFORE, each
# at its last sample (a backend that started in between counts from zero).
db_delta() { awk 'FILENAME == ARGV[1] {b[$1] = $2; next} {if ($2 > m[$1]) m[$1] = $2} END {for (p in m) t += m[p] - b[p]; print t + 0}' "$1" "$2"; }

# measure LABEL DB SCRIPT REQUESTS PORT [PORT2]: one wrk against one
# server, or against two at once (PORTS: half of its threads, and so of
# its connections, to each), so that the load generator is the same
# whatever the number of instances. SERVER_PIDS holds the servers' pids.
measure() {
  local label=$1 db=$2 script=$3 requests=$4; shift 4
  local ports=("$@")
  if (( THREADS % ${#ports[@]} )); then echo "THREADS ($THREADS) must be a multiple of the number of instances"; exit 1; fi
  local c0
  c0=$(cpu_ticks "${SERVER_PIDS[@]}"); db_ticks "$db" >"$WORK/db.before"
  local watch=""
  if [ -n "$db" ]; then db_watch "$db" "$WORK/db.samples" & watch=$!; fi
  PORTS=$(IFS=,; echo "${ports[*]}") THREADS="$THREADS" REQUESTS="$requests" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
    -s "$script" "http://127.0.0.1:${ports[0]}" >"$WORK/wrk.out"
  local c1 dt
  c1=$(cpu_ticks "${SERVER_PIDS[@]}")
  if [ -n "$watch" ]; then kill "$watch"; wait "$watch" 2>/dev/null || true; db_ticks "$db" >>"$WORK/db.samples"; fi
  dt=0
  [ -n "$db" ] && dt=$(db_delta "$WORK/db.before" "$WORK/db.samples")
  local out rps reqs p50 p99 statuses reused
  out=$(cat "$WORK/wrk.out")
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  statuses="$( (grep "^status" <<<"$out" || true) | awk '{s[$2]+=$3} END {for (k in s) printf "%s%s ", k, s[k]}')"
  # Each authorize spends its PIN: a wrk thread that runs out of its
  # share of the PINs sends spent ones again (422 pin_used, not the path
  # being measured); authorize.lua counts them.
  reused=$(awk '$1=="reused" {n+=$2} END {print n+0}' <<<"$out")
  local cpu dbcpu="-"
  cpu=$(awk -v t=$((c1 - c0)) -v n="$reqs" -v hz="$HZ" 'BEGIN {printf "%.3f", n ? t / hz * 1000 / n : 0}')
  [ -n "$db" ] && dbcpu=$(awk -v t="$dt" -v n="$reqs" -v hz="$HZ" 'BEGIN {printf "%.3f", n ? t / hz * 1000 / n : 0}')
  printf '%-34s %7s req/s  p50 %-8s p99 %-8s cpu/req %s ms  db cpu/req %s ms  %s' \
    "$label" "$rps" "$p50" "$p99" "$cpu" "$dbcpu" "$statuses"
  if [ "$reused" -gt 0 ]; then printf ' (%s requests reused a spent PIN: raise N)' "$reused"; fi
  local rss=0 p
  for p in "${SERVER_PIDS[@]}"; do rss=$((rss + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
  echo "  rss $((rss / 1024)) MB"
}

# links_requests DSN DRIVER BUILD AUTHORIZE_LUA OUT: the linked users of a
# seeded database (through the CLI, so any build can be measured) and its key.
links_requests() {
  {
    head -n1 "$4"
    echo "users = {"
    local extra=()
    [ "$2" = postgres ] && extra=(PAIRINGD_PAIRING_SECRET="$SECRET")
    env PAIRINGD_DATABASE_DRIVER="$2" PAIRINGD_DATABASE_DSN="$1" PAIRINGD_LOG_LEVEL=error "${extra[@]}" \
      "$WORK/$3/pairingd" links list --limit 1000 |
      awk 'NR > 1 && $1 != "next" {printf "%c%s%c,\n", 34, $1, 34}'
    echo "}"
  } >"$5"
}

# serve BUILD DRIVER DSN PORT LOG [CONNS PROCS]: start one pairingd; its pid is appended
# to SERVER_PIDS.
serve() {
  local extra=()
  [ "$2" = postgres ] && extra=(PAIRINGD_PAIRING_SECRET="$SECRET" PAIRINGD_DATABASE_MAX_OPEN_CONNS="${6:-$PG_CONNS}")
  [ -n "${7:-}" ] && extra+=(GOMAXPROCS="$7")
  env PAIRINGD_DATABASE_DRIVER="$2" PAIRINGD_DATABASE_DSN="$3" PAIRINGD_SERVER_LISTEN="127.0.0.1:$4" \
    PAIRINGD_LOG_LEVEL=warn "${extra[@]}" "$WORK/$1/pairingd" serve 2>"$5" &
  SERVER_PIDS+=($!); pids+=($!)
  wait_port "$4"
}

stop_servers() {
  local p
  for p in "${SERVER_PIDS[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  SERVER_PIDS=()
}

# seed ENGINE PATH: prepare the data and requests of one path on one
# engine; sets SEEDED (the SQLite file, or the PostgreSQL database that
# each run copies) and REQ.
seed() {
  local engine=$1 path=$2 n=$N seedpath=$2 out b
  [ "$path" = links ] && { n=$LINKS_N; seedpath=match; }
  out="$WORK/$engine-$path-seed.lua"
  if [ "$engine" = sqlite ]; then
    b=${builds_sqlite[0]}
    SEEDED="$WORK/seed-$path.db"
    rm -f "$SEEDED" "$SEEDED-wal" "$SEEDED-shm" "$SEEDED.secret"
    "$WORK/$b/seed" -db "$SEEDED" -n "$n" -path "$seedpath" -filler "$FILLER" -out "$out" 2>&1 | sed 's/^/  /'
  else
    b=now
    [ "$path" = links ] || n=$PG_N
    SEEDED="bench_seed_$path"
    pg_fresh "$SEEDED"
    "$WORK/now/seed" -driver postgres -db "$(pg_dsn "$SEEDED")" -secret "$SECRET" -n "$n" -path "$seedpath" -filler "$FILLER" -out "$out" 2>&1 | sed 's/^/  /'
  fi
  REQ=$out
  if [ "$path" = links ]; then
    REQ="$WORK/$engine-links.lua"
    if [ "$engine" = sqlite ]; then links_requests "$SEEDED" sqlite "$b" "$out" "$REQ"
    else links_requests "$(pg_dsn "$SEEDED")" postgres "$b" "$out" "$REQ"; fi
  fi
}

# copy_sqlite DB: a fresh copy of the seeded SQLite file at DB.
copy_sqlite() {
  rm -f "$1" "$1-wal" "$1-shm" "$1.secret"
  cp "$SEEDED" "$1"
  if [ -f "$SEEDED-wal" ]; then cp "$SEEDED-wal" "$1-wal"; fi
  # The server secret beside the database (releases since the secret left
  # the settings table); older builds keep it in the database itself.
  if [ -f "$SEEDED.secret" ]; then cp -p "$SEEDED.secret" "$1.secret"; fi
}

# pg_roll_back BUILD DB: make DB, seeded by this tree, fit an older BUILD
# by undoing the migrations BUILD does not know. Only migrations that add
# tables and indexes, or replace indexes, can be undone: their tables are
# dropped, their indexes stay (an older build's statements run on them;
# none of the measured paths reads a replaced one), and their version row
# goes. Any other statement stops the run.
pg_roll_back() {
  local known f v t
  [ "$1" = now ] && return 0
  known=$(find "$WORK/src-$1/store/migrations/postgres" -name '*.sql' | wc -l)
  for f in store/migrations/postgres/*.sql; do
    v=$((10#$(basename "$f" | cut -d_ -f1)))
    [ "$v" -le "$known" ] && continue
    if grep -v '^--' "$f" | grep -Ev '^\s*$' | grep -Eiv '^(CREATE TABLE|CREATE INDEX|CREATE UNIQUE INDEX|DROP INDEX|  |\);)' | grep -q .; then
      echo "cannot run $1 on this schema: $f does more than add tables or indexes"; exit 1
    fi
    for t in $(grep -Eio '^CREATE TABLE [a-z_]+' "$f" | awk '{print $3}'); do
      PGOPTIONS='-c client_min_messages=warning' psql "$(pg_dsn "$2")" -qAtc "DROP TABLE $t"
    done
    PGOPTIONS='-c client_min_messages=warning' psql "$(pg_dsn "$2")" -qAtc "DELETE FROM schema_migrations WHERE version = $v"
  done
}

SERVER_PIDS=()
# The baselines' tables are made once per run, with N rows.
[[ " $ENGINES " == *" pg"* ]] && pg_fresh bench_baseline
rm -f "$WORK/baseline.db" "$WORK/baseline.db-wal" "$WORK/baseline.db-shm"
echo "machine: $(nproc) cores, $(go version | awk '{print $3}'), wrk -t$THREADS -c$CONNS -d$DURATION, N=$N PG_N=$PG_N, filler rows $FILLER, engines: $ENGINES, PostgreSQL connections x1 $PG_CONNS, x2 $PG2_CONNS each (GOMAXPROCS ${PG2_PROCS:-default} each)"
pg_engines=0
for engine in $ENGINES; do [ "$engine" != sqlite ] && pg_engines=1; done
for path in $PATHS; do
  script=api/bench/authorize.lua
  [ "$path" = links ] && script=api/bench/links.lua
  for engine in sqlite pg; do
    [[ " $ENGINES " == *" $engine"* ]] || continue
    seed "$engine" "$path"
    if [ "$engine" = sqlite ]; then builds=("${builds_sqlite[@]}"); else builds=("${builds_pg[@]}"); fi
    for b in "${builds[@]}"; do
      [ "$b" = now ] && tag="pairingd" || tag="pairingd@$b"
      if [ "$engine" = sqlite ]; then
        copy_sqlite "$WORK/run.db"
        serve "$b" sqlite "$WORK/run.db" $PORT "$WORK/$b-sqlite-$path.log"
        measure "$tag sqlite $path" "" "$script" "$REQ" $PORT
        stop_servers
        continue
      fi
      for x in 1 2; do
        [ $x = 1 ] && [[ " $ENGINES " != *" pg "* ]] && continue
        [ $x = 2 ] && [[ " $ENGINES " != *" pg2 "* ]] && continue
        run="bench_run"
        pg_fresh $run "$SEEDED"
        pg_roll_back "$b" $run
        conns=$PG_CONNS procs=""
        [ $x = 2 ] && conns=$PG2_CONNS procs=$PG2_PROCS
        serve "$b" postgres "$(pg_dsn $run)" $PORT "$WORK/$b-pg$x-$path.log" "$conns" "$procs"
        ports=($PORT)
        if [ $x = 2 ]; then
          serve "$b" postgres "$(pg_dsn $run)" $PORT2 "$WORK/$b-pg$x-$path.b.log" "$conns" "$procs"
          ports+=($PORT2)
        fi
        measure "$tag pg x$x $path" $run "$script" "$REQ" "${ports[@]}"
        stop_servers
      done
    done
    # The baseline of this engine, on the same requests.
    if [ "$engine" = sqlite ]; then
      bdb="$WORK/baseline.db" bdriver=sqlite bname=""
    else
      bname=bench_baseline; bdriver=postgres
      bdb=$(pg_dsn $bname)
    fi
    xs=(1)
    [ "$engine" = pg ] && [[ " $ENGINES " == *" pg2 "* ]] && xs+=(2)
    for x in "${xs[@]}"; do
      conns=$PG_CONNS procs=""
      [ $x = 2 ] && conns=$PG2_CONNS procs=$PG2_PROCS
      SERVER_PIDS=() ports=()
      for i in $(seq 1 $x); do
        port=$BASE_PORT; [ $i = 2 ] && port=$((BASE_PORT + 2))
        env ${procs:+GOMAXPROCS=$procs} "$WORK/baseline" -driver $bdriver -db "$bdb" -conns "$conns" -listen "127.0.0.1:$port" \
          -rows "$N" -offset $(( (i - 1) * N / x )) 2>"$WORK/baseline-$engine-$i.log" &
        SERVER_PIDS+=($!); pids+=($!); ports+=($port)
        wait_port $port
      done
      tag="baseline $engine"; [ "$engine" = pg ] && tag="baseline pg x$x"
      if [ "$path" = links ]; then
        measure "$tag links (1 read)" "$bname" api/bench/links.lua "$REQ" "${ports[@]}"
      else
        measure "$tag $path (read+update)" "$bname" api/bench/authorize.lua "$REQ" "${ports[@]}"
      fi
      stop_servers
    done
  done
done
[ "$pg_engines" = 1 ] && pg "DROP DATABASE IF EXISTS bench_run WITH (FORCE)"
echo "work dir: $WORK"
