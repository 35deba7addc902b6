#!/usr/bin/env bash
# The delivery benchmark: batched webhook delivery by the embedded queue and
# worker (what `uniflow dev` runs) to a receiver that answers 200 at once
# (`uniflow-receiver`), as a ratio of that receiver's own maximum measured in
# the same run with the same request bodies and requests in flight; then the
# same delivery beside a destination that fails every attempt (isolation).
# See bench/loadgen/src/bin/delivery.rs.
#
#   bench/delivery.sh                      # 200,000 events, 100 per request
#   BENCH_EVENTS=1000000 BENCH_BATCH=500 bench/delivery.sh
#
# Prints one JSON report; times are reported, never asserted. Exits non-zero
# only when something failed (an event not delivered, a count that does not
# add up, a receiver that does not start).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p uniflow-loadgen --bin delivery -p uniflow-testkit --bin uniflow-receiver

TMP="$(mktemp -d "${TMPDIR:-/tmp}/uniflow-delivery.XXXXXX")"
RECEIVER_PID=""
cleanup() {
  if [ -n "$RECEIVER_PID" ] && kill -0 "$RECEIVER_PID" 2>/dev/null; then
    kill -TERM "$RECEIVER_PID" 2>/dev/null || true
    wait "$RECEIVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

target/release/uniflow-receiver 0 >"$TMP/receiver.out" 2>&1 &
RECEIVER_PID=$!
for _ in $(seq 1 100); do
  if grep -q '^listening on ' "$TMP/receiver.out"; then break; fi
  sleep 0.05
done
ADDR="$(sed -n 's/^listening on //p' "$TMP/receiver.out" | head -n 1)"
if [ -z "$ADDR" ]; then
  echo "the receiver did not start:" >&2
  cat "$TMP/receiver.out" >&2
  exit 1
fi
target/release/delivery --receiver "http://$ADDR" --events "${BENCH_EVENTS:-200000}" --batch "${BENCH_BATCH:-100}"
