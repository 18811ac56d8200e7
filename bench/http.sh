#!/usr/bin/env bash
# HTTP benchmarks of the release `chronos` binary on PostgreSQL + Redis, driven by wrk
# (Debian package `wrk`): 2 threads, 50 connections, 15 s per endpoint after a 3 s
# warm-up, rate limits raised out of the way. Prints one line per measurement.
#
#   bench/http.sh            # everything
#   DURATION=5s bench/http.sh
#   ONLY="jobs/:id" bench/http.sh   # the measurements whose name contains this
#
# It uses its own database (chronos_bench, dropped at the end) and Redis database 7
# (flushed at the start and the end), and listens on $PORT (default 5077). The
# database is reached without TLS on loopback (PGSSLMODE=disable, as node-postgres
# connects by default; PGSSLMODE=prefer measures with TLS). After each measurement a
# line gives the CPU time per request of chronos, PostgreSQL, Redis and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-5077}"
DB="${BENCH_DB:-chronos_bench}"
REDIS_DB="${BENCH_REDIS_DB:-7}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-50}"
DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3s}"
BASE="http://127.0.0.1:$PORT"
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qAt)

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is missing: apt-get install jq" >&2; exit 2; }

cargo build --release -q -p chronos-http
BIN="${CARGO_TARGET_DIR:-target}/release/chronos"

"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
redis-cli -n "$REDIS_DB" flushdb >/dev/null
WORK="$(mktemp -d)"

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=${PGSSLMODE:-disable}"
export REDIS_URL="redis://127.0.0.1:6379/$REDIS_DB"
export JWT_SECRET="bench-secret-bench-secret-bench-secret-0123456789"
export PORT RATE_LIMIT_MAX=1000000000 AUTH_RATE_LIMIT_MAX=1000000000
export LOG_LEVEL="${LOG_LEVEL:-warn}" WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-64}"
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
cleanup() {
  kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  redis-cli -n "$REDIS_DB" flushdb >/dev/null || true
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fs "$BASE/health" >/dev/null && break; sleep 0.1; done
curl -fs "$BASE/health" >/dev/null || { cat "$WORK/server.log"; exit 1; }

# register EMAIL -> token
register() {
  curl -fs -X POST "$BASE/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"Bench-pass-123\"}" | jq -r .data.token
}
# create TOKEN BODY -> job id
create() {
  curl -fs -X POST "$BASE/api/v1/jobs" -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $1" -d "$2" | jq -r .data.id
}
LATER='{"name":"later","job_type":"one-time","schedule_type":"scheduled","scheduled_time":"2099-01-01T00:00:00Z"}'

A=$(register "hundred@bench.example")
for i in $(seq 1 100); do create "$A" "$LATER" >/dev/null; done
ONE=$(create "$A" "$LATER")
B=$(register "tenk@bench.example")
T=$(create "$B" "$LATER")
# 9,999 more jobs for B, copied from the template row in one statement.
"${PSQL[@]}" -d "$DB" -c "INSERT INTO jobs SELECT (jsonb_populate_record(NULL::jobs,
  to_jsonb(j) || jsonb_build_object('id', gen_random_uuid(), 'name', 'job ' || g))).*
  FROM jobs j, generate_series(1, 9999) g WHERE j.id = '$T'"
# What autovacuum does to a table soon after such a load: statistics and the
# visibility map (index-only scans of the owner's jobs).
"${PSQL[@]}" -d "$DB" -c "VACUUM ANALYZE jobs"
register "login@bench.example" >/dev/null
C=$(register "creator@bench.example")

cat >"$WORK/login.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"login@bench.example","password":"Bench-pass-123"}'
EOF
cat >"$WORK/create.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"now","job_type":"one-time","schedule_type":"immediate","payload":{"n":1}}'
EOF

# CPU seconds (user + system) used so far by the processes named $1 (comm).
cpu_of() {
  local ticks=0 pid
  for pid in $(pgrep -x "$1"); do
    ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$ticks"
}
# run NAME WRK-ARGS... : warm up, measure, print req/s, latency percentiles and where
# the CPU went (chronos, postgres, redis, wrk) in microseconds per request.
run() {
  local name="$1"; shift
  [ -n "${ONLY:-}" ] && [[ "$name" != *"$ONLY"* ]] && return 0
  wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" "$@" >/dev/null
  local before=() after=() p
  for p in chronos postgres redis-server; do before+=("$(cpu_of "$p")"); done
  local wrk_cpu_before; wrk_cpu_before=$(awk '{print $16 + $17}' /proc/$$/stat)
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" >"$WORK/out"
  for p in chronos postgres redis-server; do after+=("$(cpu_of "$p")"); done
  local wrk_cpu; wrk_cpu=$(( $(awk '{print $16 + $17}' /proc/$$/stat) - wrk_cpu_before ))
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/out")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/out")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/out")
  printf '%-34s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}"
  local reqs hz; reqs=$(awk '/requests in/ {print $1}' "$WORK/out"); hz=$(getconf CLK_TCK)
  awk -v r="$reqs" -v hz="$hz" -v c=$((after[0] - before[0])) -v pg=$((after[1] - before[1])) \
    -v rd=$((after[2] - before[2])) -v w="$wrk_cpu" 'BEGIN { f = 1e6 / hz / r;
    printf "   CPU per request: chronos %.0f us, postgres %.0f us, redis %.0f us, wrk %.0f us\n",
      c * f, pg * f, rd * f, w * f }'
}

echo "== chronos $(git rev-parse --short HEAD), wrk -t$THREADS -c$CONNS -d$DURATION (warm-up $WARMUP), $(nproc) cores"
run "GET /health" "$BASE/health"
run "POST /auth/login (argon2id 19 MiB t2)" -s "$WORK/login.lua" "$BASE/api/v1/auth/login"
run "GET /api/v1/jobs (100 jobs)" -H "Authorization: Bearer $A" "$BASE/api/v1/jobs"
run "GET /api/v1/jobs (10,000 jobs)" -H "Authorization: Bearer $B" "$BASE/api/v1/jobs"
run "GET /api/v1/jobs/:id" -H "Authorization: Bearer $A" "$BASE/api/v1/jobs/$ONE"

[ -n "${ONLY:-}" ] && [[ "POST /api/v1/jobs" != *"$ONLY"* ]] && exit 0
START=$("${PSQL[@]}" -d "$DB" -c "SELECT now()")
run "POST /api/v1/jobs (immediate, run)" -s "$WORK/create.lua" -H "Authorization: Bearer $C" "$BASE/api/v1/jobs"
# Sustained means the workers kept up: wait for every created job to complete.
CREATED=$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM jobs WHERE created_at >= '$START'")
for _ in $(seq 1 600); do
  LEFT=$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM jobs WHERE created_at >= '$START' AND status <> 'completed'")
  [ "$LEFT" = 0 ] && break
  sleep 0.1
done
DRAIN=$("${PSQL[@]}" -d "$DB" -c "SELECT round(extract(epoch FROM max(e.finished_at) - max(j.created_at))::numeric, 2)
  FROM jobs j JOIN job_executions e ON e.job_id = j.id WHERE j.created_at >= '$START'")
echo "   created $CREATED jobs (warm-up included), $LEFT not completed, last one finished ${DRAIN}s after the last create"

# created -> started, from the store's own timestamps.
lateness() {
  "${PSQL[@]}" -d "$DB" -F ' ' -c "SELECT
    round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 2),
    round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 2), count(*)
    FROM (SELECT extract(epoch FROM e.execution_time - j.created_at) * 1000 AS ms
          FROM jobs j JOIN job_executions e ON e.job_id = j.id
          WHERE j.created_at >= '$1' AND e.retry_attempt = 0) s"
}
read -r P50 P99 N <<<"$(lateness "$START")"
echo "   created -> started under that load: p50 ${P50} ms, p99 ${P99} ms over $N jobs"
START=$("${PSQL[@]}" -d "$DB" -c "SELECT now()")
wrk -t1 -c1 -d5s -s "$WORK/create.lua" -H "Authorization: Bearer $C" "$BASE/api/v1/jobs" >/dev/null
sleep 1
read -r P50 P99 N <<<"$(lateness "$START")"
echo "   created -> started, one client creating back to back: p50 ${P50} ms, p99 ${P99} ms over $N jobs"
