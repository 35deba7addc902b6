#!/usr/bin/env bash
# The validation benchmark: one corpus (1 KB Order Completed events from the
# shop example, 10% invalid), four measurements in one run:
#   uniflow      bytes -> verdict, the Rust validator
#   zod          Node JSON.parse + Zod 4 (the emitted index.ts)
#   ajv          Node JSON.parse + ajv (the emitted JSON Schema)
#   sonic-rs     parse only, into a sonic-rs Value
# and the ratios against the goals. Single-threaded throughout.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
COUNT="${BENCH_COUNT:-20000}"

cargo build --release --locked -q
[ -d tests/js/node_modules ] || (cd tests/js && npm ci --no-audit --no-fund)
./target/release/uniflow build examples/shop --out "$OUT/shop" 2>/dev/null
node bench/corpus.mjs "$COUNT" > "$OUT/corpus.ndjson"
# Compile the emitted TypeScript where Node resolves `zod` from tests/js.
JS_OUT=tests/js/out/bench
rm -rf "$JS_OUT" && mkdir -p "$JS_OUT"
cp "$OUT/shop/schemas/index.ts" "$JS_OUT/index.ts"
(cd tests/js && npx tsc --module nodenext --moduleResolution nodenext --target es2022 --strict --skipLibCheck --outDir out/bench out/bench/index.ts)

node_out=$(node bench/zod_ajv.mjs "$OUT/corpus.ndjson" "$JS_OUT/index.js" "$OUT/shop/schemas/order-completed.schema.json")
rust_out=$(BENCH_CORPUS="$PWD/$OUT/corpus.ndjson" BENCH_BUNDLE="$PWD/$OUT/shop/bundle.json" cargo bench --locked -q -p uniflow-schemas --bench validate)

get() { printf '%s\n%s\n' "$node_out" "$rust_out" | sed -n "s/^$1=//p"; }
awk -v n="$(get messages)" -v b="$(get mean_bytes)" -v inv="$(get invalid)" \
    -v u="$(get uniflow_ns)" -v z="$(get zod_ns)" -v a="$(get ajv_ns)" -v s="$(get sonic_parse_ns)" -v np="$(get node_parse_ns)" '
BEGIN {
  printf "corpus: %d messages, mean %d bytes, %d invalid\n", n, b, inv
  printf "%-34s %9s %10s\n", "", "ns/msg", "MB/s"
  printf "%-34s %9.0f %10.0f\n", "uniflow (bytes -> verdict)", u, b / u * 1000
  printf "%-34s %9.0f %10.0f\n", "node JSON.parse + zod 4", z, b / z * 1000
  printf "%-34s %9.0f %10.0f\n", "node JSON.parse + ajv", a, b / a * 1000
  printf "%-34s %9.0f %10.0f\n", "sonic-rs parse only (baseline)", s, b / s * 1000
  printf "%-34s %9.0f %10.0f\n", "node JSON.parse only (reference)", np, b / np * 1000
  printf "ratios: %.1fx zod (goal >= 5), %.1fx ajv (goal >= 3), %.2fx the parse-only time (goal <= 2)\n", z / u, a / u, u / s
}'
