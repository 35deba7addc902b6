#!/usr/bin/env node
// The differential judge: the same NDJSON lines through
//   1. `uniflow validate` (the Rust engine, on the raw bytes),
//   2. the generated `validateMessage` (Zod 4, on JSON.parse of each line),
//   3. ajv (JSON Schema 2020-12) on the emitted JSON Schema, where one applies,
// and a comparison of their answers.
//
//   node differential.mjs NAME=PROJECT_DIR [NAME=PROJECT_DIR ...]
//
// For each NAME it reads (relative to this directory) gen/NAME/bundle.json and
// gen/NAME/schemas/ (from `uniflow build`), out/NAME/index.js (the compiled
// index.ts), out/NAME/messages.ndjson and out/NAME/messages.cases.ndjson
// (from gen.mjs), and writes out/NAME/differential-report.json.
//
// Uniflow must equal Zod exactly: the verdict and the whole issue list (code,
// path, message, in order). ajv must agree with Zod on the verdict, except for
// the deliberate differences (format "uri", patterns under the `u` flag,
// multipleOf's float tolerance), which are counted but do not fail. Each
// difference is split into kinds (an issue only one side reports, two issues
// at the same path, another path, another order) and one message of each
// kind is minimised to a small line.
//
// Node 20's URL.canParse (Zod's z.url()) answers differently once V8 has
// optimised it; see stable-url.mjs: the judge re-runs itself with
// --no-turbo-fast-api-calls when it detects that.
//
// Environment: UNIFLOW_BIN (default ../../target/debug/uniflow),
// DIFFERENTIAL_MINIMIZE=0 to skip minimising, DIFFERENTIAL_MAX_LISTED (the
// one-line listing of every differing message; default: all).
//
// The last line printed is `differential: N passed, M failed`; the exit code
// is 1 when M > 0.

import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parseRaw, serialize, Obj, Raw } from "./rawjson.mjs";
import { ensureStableCanParse, stabilised } from "./stable-url.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(HERE, process.env.UNIFLOW_BIN ?? "../../target/debug/uniflow");
const MINIMIZE = process.env.DIFFERENTIAL_MINIMIZE !== "0";
const MAX_LISTED = Number(process.env.DIFFERENTIAL_MAX_LISTED ?? Infinity);
const SHOW = 400; // characters of a raw line shown in listings

// ------------------------------------------------------------------ lines

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const isAsciiSpace = (b) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0c;

/** The messages of an NDJSON buffer exactly as `uniflow validate` splits them (non-blank lines, ASCII-trimmed). */
function splitLines(buf) {
  const out = [];
  let start = 0;
  for (let i = 0; i <= buf.length; i++) {
    if (i !== buf.length && buf[i] !== 0x0a) continue;
    const raw = buf.subarray(start, i);
    start = i + 1;
    let a = 0;
    let b = raw.length;
    while (a < b && isAsciiSpace(raw[a])) a++;
    while (b > a && isAsciiSpace(raw[b - 1])) b--;
    if (b > a) out.push(raw);
  }
  return out;
}

/** The line as text for display (invalid UTF-8 shown as \xNN). */
function show(raw, max = SHOW) {
  let text;
  try {
    text = decoder.decode(raw);
  } catch {
    text = [...raw].map((b) => (b < 0x80 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join("");
  }
  text = text.replace(/[\u0000-\u001f\u2028\u2029\ufeff\u00a0]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
}

// ------------------------------------------------------------------ the three validators

/** Runs `uniflow validate` on lines; returns one issue list per line. */
function runUniflow(config, lines) {
  const dir = mkdtempSync(join(tmpdir(), "uniflow-diff-"));
  try {
    const file = join(dir, "messages.ndjson");
    writeFileSync(file, Buffer.concat(lines.flatMap((l) => [l, Buffer.from("\n")])));
    const r = spawnSync(BIN, ["validate", "--config", config, file], { maxBuffer: 1 << 30 });
    if (r.error) throw new Error(`cannot run ${BIN}: ${r.error.message}`);
    if (r.status !== 0 && r.status !== 1) throw new Error(`uniflow validate exited with ${r.status ?? r.signal}: ${r.stderr}`);
    const out = r.stdout
      .toString("utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    if (out.length !== lines.length) throw new Error(`uniflow validate printed ${out.length} lines for ${lines.length} messages: ${r.stderr}`);
    out.forEach((o, i) => {
      if (o.index !== i) throw new Error(`uniflow line ${i} has index ${o.index}`);
      if (o.valid !== (o.issues.length === 0)) throw new Error(`uniflow line ${i}: valid=${o.valid} with ${o.issues.length} issues`);
    });
    return out.map((o) => o.issues);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Zod side of one line: `{parsed, issues, jsonError, threw}`. */
function runZod(validateMessage, raw) {
  let parsed;
  try {
    parsed = JSON.parse(decoder.decode(raw));
  } catch (e) {
    return { jsonError: true, issues: [{ code: "invalid_json", path: [], message: `Invalid JSON: ${e.message}` }] };
  }
  try {
    return { parsed, issues: validateMessage(parsed) };
  } catch (e) {
    return { parsed, threw: String(e?.stack ?? e), issues: [{ code: "zod_threw", path: [], message: String(e) }] };
  }
}

/** ajv: which JSON Schema applies to a parsed message (or null). */
function schemaFor(project, msg) {
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) return null;
  if (msg.type === "track" && typeof msg.event === "string" && Object.hasOwn(project.bundle.events, msg.event)) {
    return project.ajvEvents.get(msg.event) ?? null;
  }
  if (msg.type === "identify") return project.ajvIdentify;
  if (msg.type === "group") return project.ajvGroup;
  return null;
}

function loadAjv(project) {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  ajv.addKeyword("x-uniflow-version");
  const dir = join(project.gen, "schemas");
  project.ajvEvents = new Map();
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".schema.json"))) {
    const schema = JSON.parse(readFileSync(join(dir, f), "utf8"));
    project.ajvEvents.set(schema.title, ajv.compile(schema));
  }
  project.ajvIdentify = ajv.compile(JSON.parse(readFileSync(join(dir, "traits/identify.schema.json"), "utf8")));
  project.ajvGroup = ajv.compile(JSON.parse(readFileSync(join(dir, "traits/group.schema.json"), "utf8")));
  for (const e of Object.keys(project.bundle.events)) {
    if (!project.ajvEvents.has(e)) throw new Error(`no JSON Schema titled ${JSON.stringify(e)}`);
  }
}

// ------------------------------------------------------------------ comparing

const issueKey = (i) => `${i.code}|${JSON.stringify(i.path)}|${i.message}`;
const codeMsg = (i) => `${i.code} ${JSON.stringify(i.message.length > 160 ? i.message.slice(0, 160) + "…" : i.message)}`;

/** Equal issue lists (for a line that is not JSON: one invalid_json issue at [], any message). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Zod's issues as Uniflow states them when keys hold lone surrogates: each
 * lone surrogate is U+FFFD, and keys an `unrecognized_keys` message then
 * lists twice are listed once. Equal to Uniflow's issues, or not. */
function sameUpToLoneSurrogates(zod, uni) {
  if (!zod.some((i) => i.code === "unrecognized_keys" && /[\uD800-\uDFFF]/.test(i.message))) return false;
  const mapped = zod.map((i) => {
    if (i.code !== "unrecognized_keys") return i;
    const keys = [...i.message.matchAll(/"((?:[^"]|"(?=[^,]*"))*)"/g)].map((m) => m[1].replace(LONE_SURROGATE, "\uFFFD"));
    const unique = [...new Set(keys)];
    const message = `Unrecognized key${unique.length > 1 ? "s" : ""}: ${unique.map((k) => `"${k}"`).join(", ")}`;
    return { ...i, message };
  });
  return mapped.length === uni.length && mapped.every((z, k) => issueKey(z) === issueKey(uni[k]));
}

function sameIssues(zod, uni, jsonError) {
  if (jsonError) return uni.length === 1 && uni[0].code === "invalid_json" && uni[0].path.length === 0;
  return zod.length === uni.length && zod.every((z, k) => issueKey(z) === issueKey(uni[k]));
}

/** A message with its numbers replaced, so one kind of difference is one group. */
const norm = (m) =>
  (m.length > 160 ? m.slice(0, 160) + "…" : m)
    .replace(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/g, "N")
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|\uFFFD/g, "<lone surrogate or U+FFFD>");

/**
 * The atoms of a difference between two issue lists, each one kind of
 * disagreement: an issue only one side reports, a pair of different issues
 * at the same path, an issue at different paths, or the same issues in
 * another order. Codes and messages with numbers normalised (for URLs, the
 * URL itself), and whether at the top level or nested; never exact paths.
 */
function uniflowAtoms(zod, uni, jsonError, parsed) {
  const describe = (i) => {
    let d = `${i.code} ${JSON.stringify(norm(i.message))}`;
    if (i.message === "Invalid URL") d += ` for ${JSON.stringify(atPath(parsed, i.path))}`;
    return d;
  };
  if (jsonError) {
    return [uni.length === 0 ? "not JSON for JSON.parse, valid for uniflow" : `not JSON for JSON.parse, uniflow says ${[...new Set(uni.map(describe))].join("; ")}`];
  }
  const zOnly = multisetMinus(zod, uni, issueKey);
  const uOnly = multisetMinus(uni, zod, issueKey);
  if (!zOnly.length && !uOnly.length) return ["same issues in a different order"];
  const where = (i) => (i.path.length ? "nested" : "top level");
  const out = [];
  const used = new Set();
  for (const z of zOnly) {
    const samePath = uOnly.findIndex((u, j) => !used.has(j) && JSON.stringify(u.path) === JSON.stringify(z.path));
    const sameIssue = uOnly.findIndex((u, j) => !used.has(j) && describe(u) === describe(z));
    if (sameIssue >= 0 && (samePath < 0 || describe(uOnly[samePath]) !== describe(z))) {
      used.add(sameIssue);
      out.push(`path differs: ${describe(z)} [${where(z)}]`);
    } else if (samePath >= 0) {
      used.add(samePath);
      const u = uOnly[samePath];
      out.push(describe(u) === describe(z) ? `message differs: ${describe(z)} [${where(z)}]` : `zod says ${describe(z)}, uniflow says ${describe(u)} [${where(z)}]`);
    } else out.push(`only zod: ${describe(z)} [${where(z)}]`);
  }
  uOnly.forEach((u, j) => {
    if (!used.has(j)) out.push(`only uniflow: ${describe(u)} [${where(u)}]`);
  });
  return [...new Set(out)];
}

/** The items of a not matched by an item of b (by key). */
function multisetMinus(a, b, key = (x) => x) {
  const count = new Map();
  for (const x of b) count.set(key(x), (count.get(key(x)) ?? 0) + 1);
  const out = [];
  for (const x of a) {
    const n = count.get(key(x)) ?? 0;
    if (n > 0) count.set(key(x), n - 1);
    else out.push(x);
  }
  return out;
}

/** The value at a JSON pointer (ajv's instancePath). */
function at(value, pointer) {
  if (!pointer) return value;
  let v = value;
  for (const seg of pointer.slice(1).split("/")) {
    const key = seg.replace(/~1/g, "/").replace(/~0/g, "~");
    if (v === null || typeof v !== "object") return undefined;
    v = v[key];
  }
  return v;
}

function atPath(value, path) {
  let v = value;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = v[seg];
  }
  return v;
}

/** Whether a pattern means something else with the `u` flag (ajv) than without (Zod) for this string. */
function uFlagMatters(pattern, value) {
  if (typeof value !== "string") return false;
  try {
    return new RegExp(pattern).test(value) !== new RegExp(pattern, "u").test(value);
  } catch {
    return true;
  }
}

/**
 * Compares ajv's verdict with Zod's: null when they agree, else
 * `{deliberate: kind | null, signature}`.
 */
function ajvDifference(validate, msg, zodIssues) {
  const ajvValid = validate(msg);
  const zodValid = zodIssues.length === 0;
  if (ajvValid === zodValid) return null;
  if (!ajvValid) {
    const errors = validate.errors ?? [];
    const kinds = errors.map((e) => {
      if (e.keyword === "format" && e.params.format === "uri") return "uri";
      if (e.keyword === "multipleOf") return "multipleOf";
      if (e.keyword === "pattern" && uFlagMatters(e.params.pattern, at(msg, e.instancePath))) return "pattern-u-flag";
      return null;
    });
    const real = errors.filter((_, k) => kinds[k] === null);
    // allOf/anyOf wrappers fail with their parts: ignore them when their parts are explained.
    const unexplained = real.filter((e) => !(e.keyword === "allOf" || e.keyword === "anyOf"));
    if (!unexplained.length && kinds.some(Boolean)) return { deliberate: kinds.find(Boolean), signature: `ajv invalid, zod valid: ${[...new Set(kinds.filter(Boolean))].join(", ")}` };
    const sig = [...new Set(unexplained.map((e) => `${e.keyword} at ${e.schemaPath.replace(/\/properties\/(?!properties\/)[^/]+/g, "/properties/*")}${e.keyword === "pattern" ? "" : ""} (${e.message})`))].sort();
    return { deliberate: null, signature: `ajv invalid, zod valid: ${sig.join("; ")}` };
  }
  const kinds = zodIssues.map((i) => {
    if (i.code === "invalid_format" && i.message === "Invalid URL") return "uri";
    if (i.code === "not_multiple_of") return "multipleOf";
    if (i.code === "invalid_format" && i.message.startsWith("Invalid string: must match pattern /")) {
      const source = i.message.slice("Invalid string: must match pattern /".length, -1);
      if (uFlagMatters(new RegExp(source).source, atPath(msg, i.path))) return "pattern-u-flag";
    }
    return null;
  });
  if (kinds.every(Boolean)) return { deliberate: kinds[0], signature: `zod invalid, ajv valid: ${[...new Set(kinds)].join(", ")}` };
  const sig = [...new Set(zodIssues.filter((_, k) => !kinds[k]).map(codeMsg))].sort();
  return { deliberate: null, signature: `zod invalid, ajv valid: ${sig.join("; ")}` };
}

/**
 * Disagreements compiler/LANGUAGE.md (section 17) lists as deliberate. They still fail
 * (Uniflow must equal Zod); the note only says the difference is known.
 */
const DOCUMENTED = [
  [/expected unknown to/, "listed as deliberate in compiler/LANGUAGE.md section 17 (objects with a `length` key)"],
  [/Invalid URL/, "listed as deliberate in compiler/LANGUAGE.md section 17 (URLs: the `url` crate vs Node's WHATWG parser)"],
  [/must match pattern/, "listed as deliberate in compiler/LANGUAGE.md section 17 (patterns: Rust's regex vs JavaScript's RegExp)"],
  [/lone surrogate or U\+FFFD/, "listed as deliberate in compiler/LANGUAGE.md section 17 (object keys holding lone surrogates)"],
];
const documented = (sig) => DOCUMENTED.find(([re]) => re.test(sig))?.[1];

// ------------------------------------------------------------------ minimising

/** Every one-step reduction of a raw tree, smallest first. */
function reductions(tree) {
  const out = [];
  const walk = (node, replace) => {
    if (node instanceof Obj) {
      node.m.forEach(([k, v], i) => {
        out.push(() => replace(new Obj([...node.m.slice(0, i), ...node.m.slice(i + 1)])));
        walk(v, (nv) => replace(new Obj(node.m.map((mm, j) => (j === i ? [k, nv] : mm)))));
      });
    } else if (Array.isArray(node)) {
      if (node.length > 4) {
        out.push(() => replace(node.slice(0, Math.ceil(node.length / 2))));
        out.push(() => replace(node.slice(Math.floor(node.length / 2))));
      }
      if (node.length > 8) {
        // A long array (a length boundary): work on groups of equal items, not item by item.
        const texts = node.map((v) => serialize(v));
        const groups = new Map();
        texts.forEach((t, j) => groups.set(t, [...(groups.get(t) ?? []), j]));
        const byLength = [...groups.keys()].sort((a, b) => a.length - b.length);
        const smallest = node[groups.get(byLength[0])[0]];
        // Which items matter: make a half, a quarter or an eighth of them copies of the smallest.
        for (let parts = 2; parts < 2 * node.length; parts *= 2) {
          for (let q = 0; q < parts; q++) {
            const lo = Math.floor((q * node.length) / parts);
            const hi = Math.floor(((q + 1) * node.length) / parts);
            if (hi <= lo || texts.slice(lo, hi).every((t) => t === byLength[0])) continue;
            out.push(() => replace(node.map((x, j) => (j >= lo && j < hi ? smallest : x))));
          }
        }
        for (const t of byLength.slice(0, 12)) {
          const rep = node[groups.get(t)[0]];
          // Every item a copy of this one; or this group kept and the others made the smallest.
          out.push(() => replace(node.map(() => rep)));
          out.push(() => replace(node.map((x, j) => (texts[j] === t ? x : smallest))));
          // Reduce this group's item everywhere at once, or drop one of its items.
          walk(rep, (nv) => replace(node.map((x, j) => (texts[j] === t ? nv : x))));
          out.push(() => replace(node.filter((_, j) => j !== groups.get(t)[0])));
        }
        return;
      }
      node.forEach((v, i) => {
        out.push(() => replace([...node.slice(0, i), ...node.slice(i + 1)]));
        walk(v, (nv) => replace(node.map((x, j) => (j === i ? nv : x))));
      });
    } else if (typeof node === "string" && node.length > 6) {
      out.push(() => replace(node.slice(0, Math.ceil(node.length / 2))));
      out.push(() => replace(node.slice(Math.floor(node.length / 2))));
    } else if (node instanceof Raw && /^"[^\\]*"$/.test(node.text) && node.text.length > 8) {
      out.push(() => replace(node.text.slice(1, Math.ceil(node.text.length / 2))));
    }
    if ((node instanceof Obj && node.m.length) || (Array.isArray(node) && node.length)) {
      out.push(() => replace(node instanceof Obj ? new Obj() : []));
    }
  };
  walk(tree, (t) => t);
  return out.map((f) => serialize(f())).sort((a, b) => a.length - b.length);
}

/**
 * Greedy minimisation of a line: repeatedly takes the smallest one-step
 * reduction for which `signatures(candidates)` still has `target` (among its
 * atoms) without more issues than before, so unrelated issues are not
 * introduced.
 */
function minimize(line, target, signatures) {
  let text = line;
  let issues = signatures([line])[0]?.n ?? Infinity;
  let tree;
  try {
    tree = parseRaw(text);
  } catch {
    return text; // not JSON, or too deep: shown as is
  }
  const t0 = Date.now();
  let rounds = 0;
  let evaluated = 0;
  for (let round = 0; round < 300; round++) {
    rounds++;
    let candidates = [...new Set(reductions(tree))].filter((c) => c.length < text.length);
    // Bound the work of one round (the largest reductions come first).
    let budget = 4e7;
    candidates = candidates.filter((c) => (budget -= c.length) > 0);
    if (!candidates.length) break;
    // In chunks, smallest first: the first chunk with a candidate that keeps the signature wins.
    let found = null;
    for (let c = 0; c < candidates.length && found === null; c += 64) {
      const chunk = candidates.slice(c, c + 64);
      evaluated += chunk.length;
      const sigs = signatures(chunk);
      const k = sigs.findIndex((s) => s && s.atoms.includes(target) && s.n <= issues);
      if (k >= 0) found = [chunk[k], sigs[k].n];
    }
    if (found === null) break;
    [text, issues] = found;
    tree = parseRaw(text);
  }
  if (process.env.DIFFERENTIAL_DEBUG) console.error(`minimize: ${line.length} -> ${text.length} chars, ${rounds} rounds, ${evaluated} candidates, ${Date.now() - t0} ms`);
  return text;
}

/** For display: a line with runs of equal array items written `item ×N` (not JSON), or null. */
function compact(line) {
  if (line.length <= SHOW) return null;
  let tree;
  try {
    tree = parseRaw(line);
  } catch {
    return null;
  }
  const render = (v) => {
    if (Array.isArray(v)) {
      const parts = [];
      for (let i = 0; i < v.length; ) {
        const t = render(v[i]);
        let j = i + 1;
        while (j < v.length && serialize(v[j]) === serialize(v[i])) j++;
        parts.push(j - i > 2 ? `${t} ×${j - i}` : t);
        if (j - i === 2) parts.push(t);
        i = j;
      }
      return `[${parts.join(",")}]`;
    }
    if (v instanceof Obj) return `{${v.m.map(([k, x]) => `${k instanceof Raw ? k.text : JSON.stringify(k)}:${render(x)}`).join(",")}}`;
    return serialize(v);
  };
  const c = render(tree);
  return c.length < line.length ? c : null;
}

// ------------------------------------------------------------------ one project

async function judge(name, projectDir) {
  const gen = join(HERE, "gen", name);
  const out = join(HERE, "out", name);
  const project = { name, gen, bundle: JSON.parse(readFileSync(join(gen, "bundle.json"), "utf8")) };
  const { validateMessage } = await import(pathToFileURL(join(out, "index.js")).href);
  loadAjv(project);
  const lines = splitLines(readFileSync(join(out, "messages.ndjson")));
  const casesFile = join(out, "messages.cases.ndjson");
  const cases = existsSync(casesFile)
    ? readFileSync(casesFile, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  if (cases.length && cases.length !== lines.length) throw new Error(`${cases.length} cases for ${lines.length} messages`);
  const config = resolve(HERE, projectDir);
  const uniflow = runUniflow(config, lines);

  const results = [];
  const stats = {
    messages: lines.length,
    zodValid: 0,
    verdictDiff: 0,
    issuesDiff: 0,
    zodThrew: 0,
    ajvChecked: 0,
    ajvAgree: 0,
    ajvDeliberate: new Map(),
    loneSurrogateKeys: 0,
    ajvOther: 0,
    intentMismatch: new Map(),
    single: 0,
    singleFailed: 0,
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const meta = cases[i] ?? { cats: [] };
    const zod = runZod(validateMessage, raw);
    const uni = uniflow[i];
    const r = { index: i, meta, raw, zod: zod.issues, uniflow: uni, jsonError: !!zod.jsonError };
    if (zod.threw) {
      stats.zodThrew++;
      r.zodThrew = zod.threw;
    }
    if (zod.issues.length === 0) stats.zodValid++;
    const verdictEq = (zod.issues.length === 0) === (uni.length === 0);
    const issuesEq = sameIssues(zod.issues, uni, zod.jsonError);
    if (!verdictEq) stats.verdictDiff++;
    else if (!issuesEq) stats.issuesDiff++;
    r.verdictDiff = !verdictEq;
    if (!issuesEq && !zod.threw && !zod.jsonError && sameUpToLoneSurrogates(zod.issues, uni)) {
      // The one deliberate Uniflow-vs-Zod difference (compiler/LANGUAGE.md §17):
      // a Rust string cannot hold a lone surrogate, so keys holding one are
      // reported with U+FFFD. Checked exactly, so nothing else can hide here.
      stats.loneSurrogateKeys++;
      r.loneSurrogateKeys = true;
    } else if (!issuesEq || zod.threw) r.uniflowAtoms = zod.threw ? [`zod threw: ${zod.threw.split("\n")[0]}`] : uniflowAtoms(zod.issues, uni, zod.jsonError, zod.parsed);
    if (!zod.jsonError && !zod.threw) {
      const validate = schemaFor(project, zod.parsed);
      if (validate) {
        stats.ajvChecked++;
        const d = ajvDifference(validate, zod.parsed, zod.issues);
        if (!d) stats.ajvAgree++;
        else if (d.deliberate) {
          stats.ajvDeliberate.set(d.deliberate, (stats.ajvDeliberate.get(d.deliberate) ?? 0) + 1);
          r.ajvDeliberate = d;
        } else {
          stats.ajvOther++;
          r.ajvSig = d.signature;
        }
      }
    }
    if (meta.intent !== undefined && meta.intent !== (zod.issues.length === 0) && !zod.jsonError) {
      for (const c of meta.cats) stats.intentMismatch.set(c, (stats.intentMismatch.get(c) ?? 0) + 1);
      r.intentMismatch = true;
    }
    r.failed = !!(r.uniflowAtoms || r.ajvSig);
    if (meta.single) {
      stats.single++;
      if (r.failed) stats.singleFailed++;
    }
    results.push(r);
  }

  // Group the differences.
  const groups = (key) => {
    const m = new Map();
    for (const r of results) {
      for (const g of [r[key]].flat()) {
        if (!g) continue;
        if (!m.has(g)) m.set(g, []);
        m.get(g).push(r);
      }
    }
    return [...m.entries()].sort((a, b) => b[1].length - a[1].length);
  };
  const uniGroups = groups("uniflowAtoms");
  const ajvGroups = groups("ajvSig");

  // Minimise one example of each group.
  const bundlePath = join(gen, "bundle.json");
  const uniSignatures = (candidates) => {
    const bufs = candidates.map((c) => Buffer.from(c, "utf8"));
    const u = runUniflow(bundlePath, bufs);
    return bufs.map((b, k) => {
      const z = runZod(validateMessage, b);
      const n = z.issues.length + u[k].length;
      if (z.threw) return { atoms: [`zod threw: ${z.threw.split("\n")[0]}`], n };
      return sameIssues(z.issues, u[k], z.jsonError) ? null : { atoms: uniflowAtoms(z.issues, u[k], z.jsonError, z.parsed), n };
    });
  };
  const ajvSignatures = (candidates) =>
    candidates.map((c) => {
      const z = runZod(validateMessage, Buffer.from(c, "utf8"));
      if (z.jsonError || z.threw) return null;
      const v = schemaFor(project, z.parsed);
      const d = v && ajvDifference(v, z.parsed, z.issues);
      return d && !d.deliberate ? { atoms: [d.signature], n: z.issues.length + (v.errors?.length ?? 0) } : null;
    });
  const smallest = (rs) => rs.reduce((a, b) => (b.raw.length < a.raw.length ? b : a));
  const minimised = (rs, sig, signatures) => {
    const ex = smallest(rs);
    const text = show(ex.raw, Infinity);
    if (!MINIMIZE || ex.raw.length > 150000) return { line: text, from: ex.index };
    let line;
    try {
      line = minimize(decoder.decode(ex.raw), sig, signatures);
    } catch {
      line = text;
    }
    return { line, from: ex.index };
  };

  const report = { project: name, config: projectDir, stats: {}, uniflowVsZod: [], ajvVsZod: [], ajvDeliberate: {}, differences: [] };
  const log = [];
  const p = (s = "") => log.push(s);
  const catSummary = (rs) => {
    const m = new Map();
    for (const r of rs) for (const c of r.meta.cats ?? []) if (!c.startsWith("call:") && !c.startsWith("at:") && c !== "declared") m.set(c, (m.get(c) ?? 0) + 1);
    return [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([c, n]) => `${c}×${n}`)
      .join(", ");
  };

  p(`== ${name} (${projectDir}): ${lines.length} messages, ${stats.zodValid} valid for Zod`);
  p(
    `uniflow vs zod: ${lines.length - stats.verdictDiff - stats.issuesDiff - stats.zodThrew} identical, ${stats.verdictDiff} verdicts differ, ${stats.issuesDiff} issue lists differ${stats.zodThrew ? `, zod threw on ${stats.zodThrew}` : ""}; ${uniGroups.length} distinct kinds of disagreement (a message can show several)`,
  );
  uniGroups.forEach(([sig, rs], k) => {
    const m = minimised(rs, sig, uniSignatures);
    const [u] = runUniflowSafe(bundlePath, m.line);
    const z = runZod(validateMessage, Buffer.from(m.line, "utf8"));
    const entry = {
      id: `U${k + 1}`,
      signature: sig,
      messages: rs.length,
      verdictDiffers: rs.filter((r) => r.verdictDiff).length,
      singleFault: rs.filter((r) => r.meta.single).length,
      categories: catSummary(rs),
      minimized: m.line,
      minimizedFrom: m.from,
      zod: z.issues,
      uniflow: u,
    };
    entry.note = documented(sig);
    report.uniflowVsZod.push(entry);
    p(`  [${entry.id}] ${sig}`);
    if (entry.note) p(`       note: ${entry.note}; still a failure`);
    p(`       ${rs.length} messages (${entry.singleFault} single-fault, ${entry.verdictDiffers} with different verdicts); categories: ${entry.categories}`);
    p(`       minimized: ${show(Buffer.from(m.line, "utf8"))}`);
    const c = compact(m.line);
    if (c) {
      entry.compact = c;
      p(`       (compact:  ${show(Buffer.from(c, "utf8"))})`);
    }
    p(`       zod:       ${JSON.stringify(z.issues)}`);
    p(`       uniflow:   ${JSON.stringify(u)}`);
  });
  const delib = [...stats.ajvDeliberate.entries()].map(([k, n]) => `${k} ${n}`).join(", ") || "none";
  p(
    `ajv vs zod (verdicts; ${stats.ajvChecked} messages with a JSON Schema, ${lines.length - stats.ajvChecked} skipped): ${stats.ajvAgree} agree, deliberate differences: ${delib}; other differences: ${stats.ajvOther} in ${ajvGroups.length} kinds`,
  );
  ajvGroups.forEach(([sig, rs], k) => {
    const m = minimised(rs, sig, ajvSignatures);
    const entry = { id: `A${k + 1}`, signature: sig, messages: rs.length, categories: catSummary(rs), minimized: m.line, minimizedFrom: m.from };
    const z = runZod(validateMessage, Buffer.from(m.line, "utf8"));
    entry.zod = z.issues;
    report.ajvVsZod.push(entry);
    p(`  [${entry.id}] ${sig}`);
    p(`       ${rs.length} messages; categories: ${entry.categories}`);
    p(`       minimized: ${show(Buffer.from(m.line, "utf8"))}`);
    p(`       zod:       ${JSON.stringify(z.issues)}`);
  });
  for (const [kind, n] of stats.ajvDeliberate) {
    const ex = results.filter((r) => r.ajvDeliberate?.deliberate === kind);
    report.ajvDeliberate[kind] = { messages: n, examples: ex.slice(0, 5).map((r) => show(r.raw, 300)) };
    p(`  deliberate ${kind}: ${n} messages, e.g. ${show(smallest(ex).raw, 300)}`);
  }
  if (stats.intentMismatch.size) {
    const n = results.filter((r) => r.intentMismatch).length;
    const top = [...stats.intentMismatch.entries()]
      .filter(([c]) => !c.startsWith("call:") && !c.startsWith("at:") && c !== "declared")
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([c, k]) => `${c}×${k}`)
      .join(", ");
    p(`note: ${n} messages where the generator's own expectation differs from Zod (informational): ${top}`);
  }
  p(`single-fault messages: ${stats.single}, of which ${stats.singleFailed} failed`);

  // Every differing message, one line each.
  const failed = results.filter((r) => r.failed);
  const ids = new Map([...report.uniflowVsZod.map((e) => [e.signature, e.id]), ...report.ajvVsZod.map((e) => [e.signature, e.id])]);
  const uniIds = (r) => (r.uniflowAtoms ?? []).map((a) => ids.get(a));
  if (failed.length) p(`every failing message (${failed.length}):`);
  failed.slice(0, MAX_LISTED).forEach((r) => {
    const tags = [...uniIds(r), r.ajvSig && ids.get(r.ajvSig)].filter(Boolean).join(",");
    p(`  #${r.index} [${tags}] ${show(r.raw)}`);
  });
  if (failed.length > MAX_LISTED) p(`  … ${failed.length - MAX_LISTED} more in the report`);

  if (stats.loneSurrogateKeys) p(`uniflow vs zod, deliberate (lone surrogates in object keys, LANGUAGE.md §17): ${stats.loneSurrogateKeys} messages`);
  report.stats = { ...stats, ajvDeliberate: Object.fromEntries(stats.ajvDeliberate), intentMismatch: Object.fromEntries(stats.intentMismatch) };
  report.differences = failed.map((r) => ({
    index: r.index,
    meta: r.meta,
    line: show(r.raw, Infinity),
    uniflowVsZod: r.uniflowAtoms ? { ids: uniIds(r), zod: r.zod, uniflow: r.uniflow } : undefined,
    ajvVsZod: r.ajvSig ? { id: ids.get(r.ajvSig) } : undefined,
  }));
  writeFileSync(join(out, "differential-report.json"), JSON.stringify(report, null, 1) + "\n");
  const passed = results.length - failed.length;
  p(`${name}: ${passed} passed, ${failed.length} failed (report: ${join("out", name, "differential-report.json")})`);
  console.log(log.join("\n"));
  return { passed, failed: failed.length };
}

function runUniflowSafe(config, line) {
  try {
    return runUniflow(config, [Buffer.from(line, "utf8")]);
  } catch (e) {
    return [[{ code: "error", path: [], message: String(e.message) }]];
  }
}

// ------------------------------------------------------------------ main

async function main() {
  ensureStableCanParse();
  if (stabilised()) {
    console.log(
      "note: Node's URL.canParse (Zod's z.url()) rejects Latin-1 URLs such as http://ß.com once V8 optimises it; running with --no-turbo-fast-api-calls so Zod's answers do not depend on warm-up",
    );
  }
  const projects = process.argv.slice(2).map((a) => {
    const [name, dir] = a.split("=");
    if (!name || !dir) {
      console.error("usage: node differential.mjs NAME=PROJECT_DIR [NAME=PROJECT_DIR ...]");
      process.exit(2);
    }
    return [name, dir];
  });
  if (!projects.length) {
    console.error("usage: node differential.mjs NAME=PROJECT_DIR [NAME=PROJECT_DIR ...]");
    process.exit(2);
  }
  let passed = 0;
  let failed = 0;
  for (const [name, dir] of projects) {
    try {
      const r = await judge(name, dir);
      passed += r.passed;
      failed += r.failed;
    } catch (e) {
      console.log(`== ${name}: the judge could not run: ${e.stack ?? e}`);
      failed += 1;
    }
    console.log();
  }
  console.log(`differential: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

main();
