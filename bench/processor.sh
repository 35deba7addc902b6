#!/usr/bin/env bash
# The processor benchmark: identity resolution and profile upserts on the
# embedded store (what `uniflow dev` runs), single-threaded, on the mix of
# issue 6 (80% track, 15% page, 5% identify; 100,000 people, 10% of whom
# sign in) under examples/shop's identity rules, and in the same run the raw
# write rate of the same store (redb) for the same number of writes, in
# transactions of the same size. See bench/loadgen/src/bin/processor.rs.
#
#   bench/processor.sh                 # 1,000,000 events
#   BENCH_EVENTS=300000 bench/processor.sh
#
# Prints one JSON report; times are reported, never asserted. Exits non-zero
# only when something failed (an event not applied, an invalid event).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p uniflow-loadgen --bin processor
exec target/release/processor --events "${BENCH_EVENTS:-1000000}" --people "${BENCH_PEOPLE:-100000}"
