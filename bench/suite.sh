#!/usr/bin/env bash
# The benchmark suite: Chronos and its baselines, measured by the same definitions in
# the same session on this machine, and one table of ratios.
#
#   bench/suite.sh                 # full mode, about 15 min on the 2-core machine when quiet
#   QUICK=1 bench/suite.sh         # everything small, one run each, for checking (~6 min)
#   SCALE=0 bench/suite.sh         # without the scale run (1M delayed jobs, 100k cron jobs)
#   BASELINES=recorded bench/suite.sh   # reuse the recorded baseline results (the table says so)
#
# What it runs, in this order (each step under the anchors' foreign-CPU monitor,
# lib/noise.py, whose figures are printed with the table):
#   1. builds the release benches (cargo bench --no-run);
#   2. RedisQueue (chronos-redis/benches/queue.rs) and BullMQ (anchors/bullmq):
#      no-op throughput with 1 and 2 worker processes × 50, bulk enqueue, delayed-job
#      lateness (2,000 jobs over 10 s), retry gaps (backoff 100 ms, 2 failures),
#      Redis memory per delayed job;
#   3. PgQueue (chronos-postgres/benches/queue.rs) and graphile-worker (anchors/graphile),
#      batched mode: throughput with 1 and 2 processes × concurrency 10 and 24, bulk
#      enqueue, future-job lateness (graphile with its default 2 s poll and with 100 ms);
#   4. the in-memory engine (chronos/benches/engine.rs) and cron next-fire computations
#      (chronos/benches/cron.rs): no baseline;
#   5. the scale run (chronos-redis/benches/scale.rs, SCALE=0 skips it): 1,000,000
#      delayed entries on the Redis queue, 100,000 delayed jobs through the whole engine
#      (PgStore + RedisQueue), 100,000 cron jobs `* * * * *` watched for 2 minutes, and
#      the engine's own retry gaps.
# Then it prints the machine, the foreign CPU per step and ONE markdown table:
# Redis queue vs BullMQ, PostgreSQL queue vs graphile-worker (medians; ratio > 1 always
# means Chronos is better, whichever direction the metric goes), and the rows without
# a baseline. Raw JSON lines, logs and the table stay in the output directory it prints.
#
# Environment (defaults: full mode / QUICK=1):
#   RUNS=3/1          repetitions of each Chronos and baseline measurement
#   N_TP=50000/10000  throughput jobs      N_LAT=2000/500   lateness jobs (over 10 s)
#   N_MEM=100000/20000 delayed jobs for the memory figure    REPEAT=3/1 retry repetitions
#   N_ENGINE_MEM=200000/20000 in-memory engine throughput jobs
#   SCALE=1  N_DELAYED=1000000/100000  N_ENGINE=100000/5000  N_CRON=100000/5000
#            MINUTES=2/1  GAP_S=60/10  SPREAD_S=30/10  CONCURRENCY=64 (engine workers)
#   BASELINES=run|recorded|none   GRAPHILE_TP_MODES="batch" (add "default" for graphile's
#            unbatched mode, ~5 min more)   BULLMQ_HZ="10 100" (Redis hz for BullMQ's
#            lateness and retry runs: its figures depend on it, Chronos's do not)
#   OUT=/var/tmp/chronos-bench/<date>  ANCHORS=/work/shared/anchors
#   SCRATCH=/var/tmp/chronos-bench-anchors (copies of the baselines' harnesses; npm
#            install runs once and is cached there)
#   PGURL=postgres://postgres@127.0.0.1:5432/postgres (admin connection)
#   BENCH_REDIS_DB=11 (must be empty at the start; flushed at the end)
#   CARGO_TARGET_DIR as usual.
#
# Databases: chronos_bench_queue, chronos_bench_scale, anchor_graphile_tp,
# anchor_graphile_lat (each created and dropped by its benchmark; dropped again at the
# end in case a run was interrupted). Redis: database BENCH_REDIS_DB only (BullMQ's
# `hz` is changed for its hz-100 runs and restored by its harness). Nothing runs in the
# background after it returns. One suite at a time (a lock in /var/tmp).
set -euo pipefail
# The whole script is one group, read before it runs: editing the file while a suite
# runs does not derail it.
{
cd "$(dirname "$0")/.."

QUICK="${QUICK:-0}"
q() { if [[ "$QUICK" == 1 ]]; then echo "$2"; else echo "$1"; fi; }
RUNS="${RUNS:-$(q 3 1)}"
N_TP="${N_TP:-$(q 50000 10000)}"
N_LAT="${N_LAT:-$(q 2000 500)}"
N_MEM="${N_MEM:-$(q 100000 20000)}"
REPEAT="${REPEAT:-$(q 3 1)}"
N_ENGINE_MEM="${N_ENGINE_MEM:-$(q 200000 20000)}"
SCALE="${SCALE:-1}"
N_DELAYED="${N_DELAYED:-$(q 1000000 100000)}"
N_ENGINE="${N_ENGINE:-$(q 100000 5000)}"
N_CRON="${N_CRON:-$(q 100000 5000)}"
MINUTES="${MINUTES:-$(q 2 1)}"
GAP_S="${GAP_S:-$(q 60 10)}"
SPREAD_S="${SPREAD_S:-$(q 30 10)}"
CONCURRENCY="${CONCURRENCY:-64}"
BASELINES="${BASELINES:-run}"
GRAPHILE_TP_MODES="${GRAPHILE_TP_MODES:-batch}"
BULLMQ_HZ="${BULLMQ_HZ:-$(q "10 100" "10")}"
ANCHORS="${ANCHORS:-/work/shared/anchors}"
SCRATCH="${SCRATCH:-/var/tmp/chronos-bench-anchors}"
OUT="${OUT:-/var/tmp/chronos-bench/$(date +%Y%m%d-%H%M%S)}"
PGURL="${PGURL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_DB="${BENCH_REDIS_DB:-11}"
REDIS="redis://127.0.0.1:6379/$REDIS_DB"
NOISE="$ANCHORS/lib/noise.py"
PSQL=(psql "$PGURL" -v ON_ERROR_STOP=1 -qAt)
DATABASES="chronos_bench_queue chronos_bench_scale anchor_graphile_tp anchor_graphile_lat"

case "$BASELINES" in run | recorded | none) ;; *) echo "BASELINES must be run, recorded or none" >&2; exit 2 ;; esac
for tool in cargo node npm python3 psql redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }
done
[[ -f "$NOISE" ]] || { echo "no anchors harness at $ANCHORS (set ANCHORS)" >&2; exit 2; }

exec 9>/var/tmp/chronos-bench-suite.lock
flock -n 9 || { echo "another bench/suite.sh is running" >&2; exit 2; }

redis-cli -u "$REDIS" ping >/dev/null
"${PSQL[@]}" -c "SELECT 1" >/dev/null
if [[ "$(redis-cli -u "$REDIS" dbsize)" != 0 ]]; then
  echo "Redis database $REDIS_DB is not empty: choose another with BENCH_REDIS_DB" >&2
  exit 2
fi

mkdir -p "$OUT/logs" "$OUT/noise"
: >"$OUT/steps.tsv"
FAILED=()
RETRIED=()
cleanup() {
  for db in $DATABASES; do
    "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  done
  redis-cli -u "$REDIS" flushdb >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export CHRONOS_REDIS_URL="$REDIS" REDIS_URL="$REDIS" PGURL
T_SUITE=$(date +%s)

# step NAME OUTFILE CMD...: runs CMD under the noise monitor (and `timeout`, STEP_TIMEOUT
# seconds, 1,200 by default), appending its stdout to OUTFILE (the JSON lines) and its
# stderr to logs/NAME.log; a failure is reported and the suite goes on (and exits
# non-zero at the end).
step() {
  local name="$1" out="$2" t0 rc=0
  shift 2
  t0=$(date +%s)
  echo "== $name ($(date +%H:%M:%S))" >&2
  python3 "$NOISE" run "$OUT/noise/$name.jsonl" -- timeout -k 10 "${STEP_TIMEOUT:-1200}" "$@" \
    >>"$out" 2>>"$OUT/logs/$name.log" || rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$t0" "$(date +%s)" "$rc" >>"$OUT/steps.tsv"
  if [[ $rc != 0 ]]; then
    echo "!! $name failed (exit $rc); the end of $OUT/logs/$name.log:" >&2
    tail -n 20 "$OUT/logs/$name.log" >&2
    FAILED+=("$name")
  else
    echo "   $(($(date +%s) - t0)) s" >&2
  fi
}

# ---------------------------------------------------------------------------------
# 1. Build.
echo "output: $OUT" >&2
echo "== build ($(date +%H:%M:%S))" >&2
# The bench executables are run directly afterwards (a `cargo bench` per step would
# wait for cargo's locks whenever another build runs on the machine).
cargo bench --no-run -p chronos -p chronos-postgres -p chronos-redis --message-format=json \
  2>"$OUT/logs/build.log" >"$OUT/logs/build.jsonl" || { tail -n 30 "$OUT/logs/build.log" >&2; exit 1; }
bin() { # CRATE BENCH -> the executable
  python3 - "$OUT/logs/build.jsonl" "$1" "$2" <<'EOF'
import json, sys
path, crate, bench = sys.argv[1:]
for line in open(path):
    o = json.loads(line)
    t = o.get('target', {})
    if o.get('reason') == 'compiler-artifact' and 'bench' in t.get('kind', []) and t.get('name') == bench \
            and o.get('executable') and f'/{crate}/' in t.get('src_path', ''):
        print(o['executable'])
        break
else:
    sys.exit(f'no bench {crate}/{bench} was built')
EOF
}
REDIS_QUEUE="$(bin chronos-redis queue)"
SCALE_BIN="$(bin chronos-redis scale)"
PG_QUEUE="$(bin chronos-postgres queue)"
ENGINE="$(bin chronos engine)"
CRON="$(bin chronos cron)"

# The baselines' harnesses: copied to SCRATCH, npm install once (again only when the
# package.json changed).
prepare() {
  local name="$1"
  mkdir -p "$SCRATCH/$name"
  cp "$ANCHORS/$name"/*.js "$ANCHORS/$name/run-all.sh" "$ANCHORS/lib/summarize.js" \
    "$ANCHORS/lib/noise.py" "$SCRATCH/$name/"
  if ! cmp -s "$ANCHORS/$name/package.json" "$SCRATCH/$name/package.json" \
    || [[ ! -d "$SCRATCH/$name/node_modules" ]]; then
    cp "$ANCHORS/$name/package.json" "$SCRATCH/$name/"
    echo "== npm install in $SCRATCH/$name" >&2
    (cd "$SCRATCH/$name" && npm install --no-audit --no-fund --loglevel=error >"$OUT/logs/npm-$name.log" 2>&1) \
      || { rm -rf "$SCRATCH/$name/node_modules"; tail -n 20 "$OUT/logs/npm-$name.log" >&2; exit 1; }
  fi
}
if [[ "$BASELINES" == run ]]; then
  prepare bullmq
  prepare graphile
fi

# anchor NAME PART ENV...: one part of a baseline's run-all.sh (each part alone, so
# its N is its own), RUNS times, one run per step, its JSON lines appended to
# NAME.jsonl. A run that fails is tried once more (graphile's harness sometimes dies
# of an unhandled error event when it drops its database WITH (FORCE) at the end of a
# run while a pool connection is still open).
anchor() {
  local name="$1" part="$2" r dir
  shift 2
  for r in $(seq 1 "$RUNS"); do
    for try in 1 2; do
      dir="$OUT/raw/$name-$part-$r-$try"
      mkdir -p "$dir"
      step "$name-$part-$r$([[ $try == 2 ]] && echo "-again")" "$OUT/logs/$name-$part.summary" \
        env ONLY="$part" RUNS=1 OUT="$dir" "$@" "$SCRATCH/$name/run-all.sh"
      if [[ "$(tail -n 1 "$OUT/steps.tsv" | cut -f4)" == 0 ]]; then
        cat "$dir/$name.jsonl" >>"$OUT/$name.jsonl"
        if [[ $try == 2 ]]; then # the second try made up for the first
          unset 'FAILED[-1]'
          RETRIED+=("$name-$part-$r")
        fi
        break
      fi
    done
  done
}

# ---------------------------------------------------------------------------------
# 2. Redis: RedisQueue and BullMQ.
for r in $(seq 1 "$RUNS"); do
  step "chronos-redis-$r" "$OUT/chronos-redis.jsonl" \
    env N_TP="$N_TP" N_LAT="$N_LAT" N_MEM="$N_MEM" REPEAT="$REPEAT" "$REDIS_QUEUE"
done
if [[ "$BASELINES" == run ]]; then
  anchor bullmq throughput N="$N_TP" TP_WORKERS="1 2"
  anchor bullmq latency N="$N_LAT" LAT_HZ="$BULLMQ_HZ"
  anchor bullmq retry REPEAT="$REPEAT" RETRY_HZ="$BULLMQ_HZ"
  anchor bullmq memory N="$N_MEM" MEM_VARIANTS="0:1"
fi

# 3. PostgreSQL: PgQueue and graphile-worker.
step chronos-pg "$OUT/chronos-pg.jsonl" \
  env RUNS="$RUNS" N="$N_TP" LAT_N="$N_LAT" "$PG_QUEUE"
if [[ "$BASELINES" == run ]]; then
  # (not with NOISE_LOG: run-all.sh then fails when no run was clean; the foreign
  # CPU of each step is reported below instead)
  anchor graphile throughput N="$N_TP" TP_MODES="$GRAPHILE_TP_MODES"
  anchor graphile latency N="$N_LAT" LAT_POLL="2000 100"
fi

# 4. The in-memory engine and cron computations.
for r in $(seq 1 "$RUNS"); do
  step "chronos-engine-$r" "$OUT/chronos-engine.jsonl" \
    env N="$N_ENGINE_MEM" "$ENGINE"
done
step chronos-cron "$OUT/chronos-engine.jsonl" "$CRON"

# 5. The scale run.
if [[ "$SCALE" != 0 ]]; then
  STEP_TIMEOUT=3600 step chronos-scale "$OUT/chronos-scale.jsonl" \
    env N_DELAYED="$N_DELAYED" N_ENGINE="$N_ENGINE" N_CRON="$N_CRON" MINUTES="$MINUTES" \
    GAP_S="$GAP_S" SPREAD_S="$SPREAD_S" CONCURRENCY="$CONCURRENCY" REPEAT="$REPEAT" \
    "$SCALE_BIN"
fi

if [[ "$BASELINES" == recorded ]]; then
  cp "$ANCHORS/results/bullmq.jsonl" "$OUT/bullmq.jsonl"
  cp "$ANCHORS/results/graphile.jsonl" "$OUT/graphile.jsonl"
fi

# ---------------------------------------------------------------------------------
# The report: machine, foreign CPU per step, the table.
{
  echo "## Chronos benchmark suite, $(date -u +'%Y-%m-%d %H:%M UTC')"
  echo
  echo "- mode: $(q full QUICK) (RUNS=$RUNS N_TP=$N_TP N_LAT=$N_LAT N_MEM=$N_MEM$(
    [[ "$SCALE" != 0 ]] && echo " N_DELAYED=$N_DELAYED N_ENGINE=$N_ENGINE N_CRON=$N_CRON MINUTES=$MINUTES"
  )), $((($(date +%s) - T_SUITE) / 60)) min"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'),"\
    "$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo);"\
    "PostgreSQL $("${PSQL[@]}" -c 'SHOW server_version' | cut -d' ' -f1),"\
    "Redis $(redis-cli -u "$REDIS" info server | tr -d '\r' | awk -F: '/^redis_version/ {print $2}'),"\
    "node $(node --version), rustc $(rustc --version | cut -d' ' -f2)"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
  case "$BASELINES" in
    run) echo "- baselines: run in this session (BullMQ $(node -p "require('$SCRATCH/bullmq/node_modules/bullmq/package.json').version"), graphile-worker $(node -p "require('$SCRATCH/graphile/node_modules/graphile-worker/package.json').version"))" ;;
    recorded) echo "- baselines: **NOT run in this session**: recorded results from $ANCHORS/results (BASELINES=recorded)" ;;
    none) echo "- baselines: not run (BASELINES=none)" ;;
  esac
  echo "- raw JSON lines and logs: $OUT"
  if ((${#RETRIED[@]})); then
    echo "- baseline runs that failed and were run again: ${RETRIED[*]} (logs in $OUT/logs)"
  fi
  python3 - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
rows = []
for line in open(os.path.join(out, 'steps.tsv')):
    name, t0, t1, rc = line.rstrip('\n').split('\t')
    fc = []
    p = os.path.join(out, 'noise', name + '.jsonl')
    if os.path.exists(p):
        fc = [json.loads(l)['foreign_cores'] for l in open(p) if l.strip()]
    mean = sum(fc) / len(fc) if fc else float('nan')
    rows.append(f"{name} {int(t1) - int(t0)} s{'' if rc == '0' else ' FAILED'}, "
                f"{mean:.2f}/{max(fc) if fc else float('nan'):.2f}")
print('- foreign CPU (cores used by other processes, mean/max; noise.py; a step is clean at mean <= 0.2): '
      + '; '.join(rows))
EOF
  echo
  python3 - "$OUT" <<'EOF'
import json, os, re, statistics, sys
out = sys.argv[1]

def load(name):
    p = os.path.join(out, name + '.jsonl')
    lines = []
    if os.path.exists(p):
        for l in open(p):
            l = l.strip()
            if l.startswith('{'):
                try:
                    lines.append(json.loads(l))
                except ValueError:
                    pass
    return lines

data = {n: load(n) for n in ['chronos-redis', 'chronos-pg', 'chronos-engine', 'chronos-scale', 'bullmq', 'graphile']}

def values(src, label, metric):
    """Numbers of `metric` on the lines of `src` whose label matches `label` (a regex)."""
    r = re.compile(label + '$')
    return [o[metric] for o in data[src] if r.match(str(o.get('label', '')))
            and isinstance(o.get(metric), (int, float))]

def cfg(src, label, key):
    r = re.compile(label + '$')
    for o in data[src]:
        if r.match(str(o.get('label', ''))) and key in o.get('cfg', {}):
            return o['cfg'][key]
    return None

def fmt(x):
    if x is None:
        return ''
    if abs(x) >= 1000:
        return f'{round(x):,}'
    return f'{x:.3g}' if abs(x) < 10 else f'{x:.1f}'.rstrip('0').rstrip('.')

def cell(v, unit):
    if not v:
        return '–'
    m = statistics.median(v)
    s = fmt(m) + (f' {unit}' if unit else '')
    if len(v) > 1:
        s += f' [{fmt(min(v))}–{fmt(max(v))}]'
    return s

print('| comparison | measurement | Chronos | baseline | ratio |')
print('|---|---|---:|---:|---:|')

def row(group, what, c, b, better, unit=''):
    """c, b: lists of numbers; better: 'higher' or 'lower'."""
    if not c and not b:
        return
    ratio = '–'
    if c and b:
        cm, bm = statistics.median(c), statistics.median(b)
        x = None
        if better == 'higher' and bm > 0:
            x = cm / bm
        elif better == 'lower' and cm > 0:
            x = bm / cm
        if x is not None:
            ratio = f'{x:,.0f}×' if x >= 100 else f'{x:.1f}×' if x >= 10 else f'{x:.2f}×'
        elif better == 'lower':
            ratio = '∞ (Chronos ≤ 0)'
    arrow = '↑' if better == 'higher' else '↓'
    print(f'| {group} | {what} ({arrow}) | {cell(c, unit)} | {cell(b, unit) if b is not None else "no baseline"} | {ratio} |')

R, B = 'RedisQueue vs BullMQ', 'chronos-redis'
row(R, 'no-op jobs/s, 1 worker process × 50', values(B, r'chronos\.throughput\.w1\.c50', 'process_jobs_per_s'),
    values('bullmq', r'bullmq\.throughput\.w1\.c50', 'process_jobs_per_s'), 'higher')
row(R, 'no-op jobs/s, 2 worker processes × 50', values(B, r'chronos\.throughput\.w2\.c50', 'process_jobs_per_s'),
    values('bullmq', r'bullmq\.throughput\.w2\.c50', 'process_jobs_per_s'), 'higher')
row(R, 'bulk enqueue, jobs/s (chunks of 1,000)', values(B, r'chronos\.throughput\.w\d\.c50', 'enqueue_jobs_per_s'),
    values('bullmq', r'bullmq\.throughput\.w\d\.c50', 'enqueue_jobs_per_s'), 'higher')
row(R, 'Redis bytes per waiting job', values(B, r'chronos\.throughput\.w\d\.c50', 'redis_bytes_per_waiting_job'),
    values('bullmq', r'bullmq\.throughput\.w\d\.c50', 'redis_bytes_per_waiting_job'), 'lower')
for m in ['p50', 'p99', 'max']:
    row(R, f'delayed-job lateness {m}, Redis defaults (hz 10)', values(B, r'chronos\.latency\.w1\.c50', 'lateness_' + m),
        values('bullmq', r'bullmq\.latency\.w1\.c50', 'lateness_' + m), 'lower', 'ms')
for m in ['p50', 'p99']:
    b = values('bullmq', r'bullmq\.latency\.w1\.c50\.hz100', 'lateness_' + m)
    if b:
        row(R, f'delayed-job lateness {m}, BullMQ with Redis hz 100', values(B, r'chronos\.latency\.w1\.c50', 'lateness_' + m),
            b, 'lower', 'ms')
for k, e in [(1, 100), (2, 200)]:
    row(R, f'retry gap {k} beyond the expected {e} ms (queue layer)', values(B, r'chronos\.retry', f'gap{k}_over_expected_ms'),
        values('bullmq', r'bullmq\.retry', f'gap{k}_over_expected_ms'), 'lower', 'ms')
for k, e in [(1, 100), (2, 200)]:
    row(R, f'retry gap {k} beyond the expected {e} ms (engine: PgStore + RedisQueue)',
        values('chronos-scale', r'chronos\.scale\.retry\.engine', f'gap{k}_over_expected_ms'),
        values('bullmq', r'bullmq\.retry', f'gap{k}_over_expected_ms'), 'lower', 'ms')
row(R, 'Redis bytes per delayed job, empty payload', values(B, r'chronos\.delayed_memory\.p0', 'bytes_per_delayed_job'),
    values('bullmq', r'bullmq\.delayed_memory\.p0', 'bytes_per_delayed_job'), 'lower')

P, B = 'PgQueue vs graphile-worker', 'chronos-pg'
for w in (1, 2):
    for c in (10, 24):
        row(P, f'no-op jobs/s, {w} process{"es" if w > 1 else ""} × {c}, graphile batched',
            values(B, rf'chronos-pgqueue\.throughput\.w{w}\.c{c}\.batch', 'process_jobs_per_s'),
            values('graphile', rf'graphile\.throughput\.w{w}\.c{c}\.batch', 'process_jobs_per_s'), 'higher')
for w in (1, 2):
    for c in (10, 24):
        b = values('graphile', rf'graphile\.throughput\.w{w}\.c{c}', 'process_jobs_per_s')
        if b:
            row(P, f'no-op jobs/s, {w} process{"es" if w > 1 else ""} × {c}, graphile defaults (unbatched)',
                values(B, rf'chronos-pgqueue\.throughput\.w{w}\.c{c}\.batch', 'process_jobs_per_s'), b, 'higher')
row(P, 'bulk enqueue, jobs/s (one statement per 1,000)', values(B, r'chronos-pgqueue\.throughput\..*', 'enqueue_jobs_per_s'),
    values('graphile', r'graphile\.throughput\..*', 'enqueue_jobs_per_s'), 'higher')
row(P, 'PostgreSQL bytes per queued job', values(B, r'chronos-pgqueue\.throughput\..*', 'pg_bytes_per_queued_job'),
    values('graphile', r'graphile\.throughput\..*', 'pg_bytes_per_queued_job'), 'lower')
for m in ['p50', 'p99', 'max']:
    row(P, f'future-job lateness {m}, graphile default poll (2 s)', values(B, r'chronos-pgqueue\.latency\.w1\.c50', 'lateness_' + m),
        values('graphile', r'graphile\.latency\.w1\.c50', 'lateness_' + m), 'lower', 'ms')
for m in ['p50', 'p99']:
    row(P, f'future-job lateness {m}, graphile poll 100 ms', values(B, r'chronos-pgqueue\.latency\.w1\.c50', 'lateness_' + m),
        values('graphile', r'graphile\.latency\.w1\.c50\.poll100', 'lateness_' + m), 'lower', 'ms')

E, B = 'in-memory engine', 'chronos-engine'
row(E, 'create jobs/s (one `create` at a time)', values(B, r'chronos\.throughput\.memory\.c\d+', 'enqueue_jobs_per_s'), None, 'higher')
row(E, 'no-op jobs/s (concurrency 256)', values(B, r'chronos\.throughput\.memory\.c\d+', 'process_jobs_per_s'), None, 'higher')
for m in ['p50', 'p99', 'max']:
    row(E, f'lateness {m}', values(B, r'chronos\.latency\.memory', 'lateness_' + m), None, 'lower', 'ms')
row(E, 'cron next fire computations/s (8 expressions × 5 zones)', values(B, r'chronos\.cron\.next_after\.total', 'value'), None, 'higher')

S, B = 'scale', 'chronos-scale'
n = cfg(B, r'chronos\.scale\.delayed\.queue', 'n')
if n:
    g = f'scale: {n:,} delayed entries, RedisQueue'
    row(g, 'enqueue, entries/s', values(B, r'chronos\.scale\.delayed\.queue', 'enqueue_jobs_per_s'), None, 'higher')
    row(g, 'Redis bytes per entry (used_memory delta / N)', values(B, r'chronos\.scale\.delayed\.queue', 'redis_bytes_per_delayed_job'), None, 'lower')
    row(g, 'process peak RSS (producer + workers)', values(B, r'chronos\.scale\.delayed\.queue', 'process_peak_rss_mib'), None, 'lower', 'MiB')
    for m in ['p50', 'p99', 'max']:
        row(g, f'lateness {m}, due over {fmt(cfg(B, r"chronos.scale.delayed.queue", "spread_s"))} s',
            values(B, r'chronos\.scale\.delayed\.queue', 'lateness_' + m), None, 'lower', 'ms')
    row(g, 'entries not run (timed out)', [x for x in values(B, r'chronos\.scale\.delayed\.queue', 'timed_out')], None, 'lower')
n = cfg(B, r'chronos\.scale\.delayed\.engine', 'n')
if n:
    g = f'scale: {n:,} delayed jobs, engine (PgStore + RedisQueue)'
    row(g, '`Chronos::create`, jobs/s', values(B, r'chronos\.scale\.delayed\.engine', 'create_jobs_per_s'), None, 'higher')
    row(g, 'PostgreSQL bytes per job (jobs table + indexes)', values(B, r'chronos\.scale\.delayed\.engine', 'pg_jobs_bytes_per_job'), None, 'lower')
    row(g, 'PostgreSQL bytes per execution record', values(B, r'chronos\.scale\.delayed\.engine', 'pg_executions_bytes_per_job'), None, 'lower')
    row(g, 'Redis bytes per job', values(B, r'chronos\.scale\.delayed\.engine', 'redis_bytes_per_delayed_job'), None, 'lower')
    row(g, 'process peak RSS', values(B, r'chronos\.scale\.delayed\.engine', 'process_peak_rss_mib'), None, 'lower', 'MiB')
    row(g, 'jobs run per second while draining', values(B, r'chronos\.scale\.delayed\.engine', 'drain_jobs_per_s'), None, 'higher')
    for m in ['p50', 'p99', 'max']:
        row(g, f'lateness {m}, due over {fmt(cfg(B, r"chronos.scale.delayed.engine", "spread_s"))} s',
            values(B, r'chronos\.scale\.delayed\.engine', 'lateness_' + m), None, 'lower', 'ms')
n = cfg(B, r'chronos\.scale\.cron', 'n')
if n:
    g = f'scale: {n:,} cron jobs `* * * * *`, engine'
    row(g, '`Chronos::create`, jobs/s', values(B, r'chronos\.scale\.cron\.create', 'create_jobs_per_s'), None, 'higher')
    mins = cfg(B, r'chronos\.scale\.cron', 'minutes')
    row(g, f'occurrences run, over {mins} minute(s) ({n * mins:,} owed)',
        values(B, r'chronos\.scale\.cron', 'fired'), None, 'higher')
    row(g, 'occurrences folded into a late run of the one before (missed policy coalesce)',
        values(B, r'chronos\.scale\.cron', 'folded'), None, 'lower')
    row(g, 'occurrences lost (neither run nor folded)', values(B, r'chronos\.scale\.cron', 'missing'), None, 'lower')
    row(g, 'occurrences that ran twice', values(B, r'chronos\.scale\.cron', 'duplicates'), None, 'lower')
    for m in ['p50', 'p99', 'max']:
        row(g, f'start after the minute, {m}', values(B, r'chronos\.scale\.cron', 'lateness_' + m), None, 'lower', 'ms')
    row(g, 'last start of a minute, after the minute', values(B, r'chronos\.scale\.cron\.minute', 'last_start_after_s'), None, 'lower', 's')
    row(g, 'CPU cores: the Chronos process', values(B, r'chronos\.scale\.cron', 'process_cores'), None, 'lower')
    row(g, 'CPU cores: PostgreSQL', values(B, r'chronos\.scale\.cron', 'pg_cores'), None, 'lower')
    row(g, 'CPU cores: Redis', values(B, r'chronos\.scale\.cron', 'redis_cores'), None, 'lower')
    row(g, 'process peak RSS', values(B, r'chronos\.scale\.cron', 'process_peak_rss_mib'), None, 'lower', 'MiB')
    row(g, 'PostgreSQL bytes per job (jobs table + indexes)', values(B, r'chronos\.scale\.cron', 'pg_jobs_bytes_per_job'), None, 'lower')
    row(g, 'PostgreSQL bytes per execution record', values(B, r'chronos\.scale\.cron', 'pg_executions_bytes_per_occurrence'), None, 'lower')
    row(g, 'Redis bytes per job', values(B, r'chronos\.scale\.cron\.create', 'redis_bytes_per_job'), None, 'lower')
EOF
  echo
  echo "Medians [min–max] over the runs; ↑ higher is better, ↓ lower is better; ratio = Chronos/baseline"\
    "when higher is better and baseline/Chronos when lower is better, so a ratio > 1 always means Chronos"\
    "is better. Lateness = handler start − due time."
} | tee "$OUT/report.md"

if ((${#FAILED[@]})); then
  echo "failed steps: ${FAILED[*]} (logs in $OUT/logs)" >&2
  exit 1
fi
exit 0
}
