// Node's side of the validation benchmark: JSON.parse + Zod 4 (the emitted
// index.ts, compiled) and JSON.parse + ajv (the emitted JSON Schema), on the
// same corpus. Prints `key=value` lines.
//
// usage: node bench/zod_ajv.mjs CORPUS INDEX_JS SCHEMA_JSON

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [corpusPath, indexJs, schemaPath] = process.argv.slice(2);
const require = createRequire(path.resolve("tests/js/package.json"));
const Ajv2020 = require("ajv/dist/2020.js").default;
const addFormats = require("ajv-formats").default ?? require("ajv-formats");

const { validateMessage } = await import(pathToFileURL(path.resolve(indexJs)).href);
const ajv = new Ajv2020({ allErrors: true });
addFormats(ajv);
const ajvValidate = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));

const lines = readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length > 0);
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);

function measure(fn) {
  for (let i = 0; i < 2; i++) fn(); // warm up the JIT
  const times = [];
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] / lines.length;
}

let sink = 0;
const zod = measure(() => {
  for (const l of lines) sink += validateMessage(JSON.parse(l)).length === 0 ? 1 : 0;
});
const ajvNs = measure(() => {
  for (const l of lines) sink += ajvValidate(JSON.parse(l)) ? 1 : 0;
});
const parseNs = measure(() => {
  for (const l of lines) sink += JSON.parse(l) === null ? 1 : 0;
});
console.log(`zod_ns=${zod.toFixed(1)}`);
console.log(`ajv_ns=${ajvNs.toFixed(1)}`);
console.log(`node_parse_ns=${parseNs.toFixed(1)}`);
if (sink < 0) console.log(sink);
