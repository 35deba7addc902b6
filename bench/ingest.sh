#!/usr/bin/env bash
# The ingest benchmark: the throughput of `uniflow dev` (POST /v1/batch,
# validated, deduplicated and fsynced before each 200) as a ratio of a bare
# axum server's (`bare`: reads the body, answers {"success":true}) measured
# in the same run, with the same load generator, payloads and duration.
#
#   bench/ingest.sh                       # 10 s per target, 32 connections
#   BENCH_SECONDS=30 BENCH_CONNECTIONS=64 bench/ingest.sh
#
# Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_BATCH (100
# events per request), BENCH_WARMUP (1 s of load before measuring),
# BENCH_KEEP=1 keeps the temporary directory (data dir, logs, JSON reports).
#
# Times are reported, never asserted: the exit status is non-zero only when
# something failed (a server that does not start or stop cleanly, an answer
# other than 200, a message not accepted, generated events that are invalid).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${BENCH_SECONDS:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
BATCH="${BENCH_BATCH:-100}"
WARMUP="${BENCH_WARMUP:-1}"
CORES="$(nproc)"
BIN=target/release

cargo build --release --locked -q -p uniflow -p uniflow-loadgen --bins

TMP="$(mktemp -d "${TMPDIR:-/tmp}/uniflow-ingest.XXXXXX")"
UNIFLOW_PID=""
BARE_PID=""
cleanup() {
  # Only the servers this script started, by their process id.
  for pid in "$UNIFLOW_PID" "$BARE_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

fail() {
  echo "ingest benchmark: $*" >&2
  exit 1
}

# Whether process `pid` runs (an exited child stays a zombie until waited
# for, and `kill -0` succeeds on a zombie).
alive() {
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# The events must be valid for the schema, or uniflow would reject them and
# the benchmark would measure error answers.
"$BIN/loadgen" --dump 2000 --batch "$BATCH" >"$TMP/sample.ndjson"
if ! "$BIN/uniflow" validate --config examples/shop "$TMP/sample.ndjson" >"$TMP/validate.out"; then
  grep -v '"valid":true' "$TMP/validate.out" | head -5 >&2
  fail "the generated events are not valid for examples/shop (see above)"
fi

# Waits until the server `name` (process `pid`) has printed its address in
# `out` and accepts connections; prints the port.
wait_listening() {
  local name=$1 pid=$2 out=$3 err=$4 port=""
  for _ in $(seq 1 300); do
    if ! alive "$pid"; then
      cat "$err" >&2
      fail "$name exited before listening"
    fi
    port="$(sed -n 's#.*http://127\.0\.0\.1:\([0-9][0-9]*\)/.*#\1#p' "$out" | head -1)"
    if [ -n "$port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
    sleep 0.1
  done
  cat "$err" >&2
  fail "$name did not listen within 30 s"
}

"$BIN/uniflow" dev examples/shop --port 0 --data "$TMP/data" \
  >"$TMP/uniflow.out" 2>"$TMP/uniflow.err" &
UNIFLOW_PID=$!
"$BIN/bare" --port 0 >"$TMP/bare.out" 2>"$TMP/bare.err" &
BARE_PID=$!
UNIFLOW_PORT="$(wait_listening "uniflow dev" "$UNIFLOW_PID" "$TMP/uniflow.out" "$TMP/uniflow.err")"
BARE_PORT="$(wait_listening "bare" "$BARE_PID" "$TMP/bare.out" "$TMP/bare.err")"
[ -s "$TMP/data/sources.json" ] || fail "uniflow dev wrote no $TMP/data/sources.json"
LOAD_BEFORE="$(cut -d' ' -f1 /proc/loadavg)"

# One measurement: the same seed (payloads), duration and connections.
FAILED=0
measure() {
  local label=$1 port=$2 pid=$3
  shift 3
  if ! "$BIN/loadgen" --label "$label" --url "http://127.0.0.1:$port/v1/batch" "$@" \
    --connections "$CONNECTIONS" --duration "$SECONDS_PER_TARGET" --warmup "$WARMUP" \
    --batch "$BATCH" --seed 1 --server-pid "$pid" >"$TMP/$label.json"; then
    FAILED=1
    echo "ingest benchmark: errors against $label:" >&2
    grep -E '"(non_200|non_200_total|transport_errors|events_not_accepted|duplicate_events|first_error)"' \
      "$TMP/$label.json" >&2 || true
  fi
}
# The bare server first: afterwards uniflow dev keeps archiving (gzip) what
# it logged, which would take CPU from a measurement running then.
measure bare "$BARE_PORT" "$BARE_PID" --write-key bench
measure uniflow "$UNIFLOW_PORT" "$UNIFLOW_PID" --sources-json "$TMP/data/sources.json" --source order-backend

# Stop both with SIGTERM: each must exit 0 (uniflow archives its log first).
stop() {
  local name=$1 pid=$2 rc=0 started=$SECONDS
  kill -TERM "$pid"
  for _ in $(seq 1 1200); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    FAILED=1
    echo "ingest benchmark: $name did not stop within 120 s of SIGTERM" >&2
    return 0
  fi
  wait "$pid" || rc=$?
  if [ "$rc" != 0 ]; then
    FAILED=1
    echo "ingest benchmark: $name exited $rc after SIGTERM:" >&2
    tail -5 "$TMP/$name.err" >&2
  fi
  echo "$name stopped (exit $rc) $((SECONDS - started)) s after SIGTERM" >"$TMP/$name.stop"
}
stop bare "$BARE_PID"
BARE_PID=""
stop uniflow "$UNIFLOW_PID"
UNIFLOW_PID=""

# A flat key of a loadgen report ("null" when absent).
get() {
  local v
  v="$(sed -n "s/^  \"$2\": \(.*\)$/\1/p" "$TMP/$1.json" | sed 's/,$//; s/"//g')"
  echo "${v:-null}"
}
[ -s "$TMP/bare.json" ] && [ -s "$TMP/uniflow.json" ] || fail "a load generator run produced no report"

report_row() {
  local label=$1 name=$2
  printf '%s' "$label"
  for key in events_per_s mb_per_s requests_per_s latency_p50_ms latency_p99_ms latency_max_ms \
    server_cores_used loadgen_cores_used other_processes_cores errors; do
    printf ' %s' "$(get "$name" "$key")"
  done
  printf '\n'
}
{
  report_row bare bare
  report_row uniflow uniflow
} | awk -v secs="$SECONDS_PER_TARGET" -v warm="$WARMUP" -v conns="$CONNECTIONS" -v batch="$BATCH" \
  -v cores="$CORES" -v load="$LOAD_BEFORE" -v evbytes="$(get uniflow mean_event_bytes)" \
  -v u_cpu="$(get uniflow events_per_server_cpu_s)" -v b_cpu="$(get bare events_per_server_cpu_s)" '
function goal(ok) { return ok ? "met" : "NOT met" }
{ for (i = 2; i <= NF; i++) v[$1, i] = $i }
END {
  printf "ingest benchmark: POST /v1/batch, %d s per target after %s s of warm-up, %d keep-alive connections,\n", secs, warm, conns
  printf "  %d events per request, mean %d bytes per event; %d cores, 1-min load average before: %s\n\n", batch, evbytes, cores, load
  printf "%-65s %26s\n", "", "------ cores used by -----"
  printf "%-12s %10s %8s %8s %7s %7s %7s %8s %8s %8s %6s\n", "target", "events/s", "MB/s", "req/s", "p50 ms", "p99 ms", "max ms", "server", "loadgen", "others", "errors"
  n = split("bare uniflow", names, " ")
  split("bare axum,uniflow dev", labels, ",")
  for (k = 1; k <= n; k++) {
    t = names[k]
    printf "%-12s %10.0f %8.1f %8.1f %7.2f %7.2f %7.1f %8s %8s %8s %6d\n", labels[k], v[t,2], v[t,3], v[t,4], v[t,5], v[t,6], v[t,7], v[t,8], v[t,9], v[t,10], v[t,11]
  }
  ratio = v["bare",3] > 0 ? v["uniflow",3] / v["bare",3] : 0
  per_core = v["uniflow",2] / cores
  printf "\nuniflow MB/s / bare MB/s:    %.3f   (goal >= 0.333: %s)\n", ratio, goal(ratio >= 1/3)
  printf "uniflow events/s per core:   %.0f   (goal >= 100000: %s)\n", per_core, goal(per_core >= 100000)
  printf "  per core = events/s / nproc (%d). The load generator shares these %d cores with the server\n", cores, cores
  printf "  (its share is in the table, with what other processes of the machine took meanwhile);\n"
  printf "  per second of its own CPU time, uniflow dev ingested %.0f events (bare: %.0f).\n", u_cpu, b_cpu
}'
echo "events in each second, bare:    $(get bare events_per_second_timeline)"
echo "events in each second, uniflow: $(get uniflow events_per_second_timeline)"
cat "$TMP/bare.stop" "$TMP/uniflow.stop" 2>/dev/null || true
if [ "$FAILED" != 0 ]; then
  fail "there were errors (see above); the figures are not valid"
fi
