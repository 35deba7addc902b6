#!/usr/bin/env node
// Seeded, deterministic generator of Segment-spec messages for the
// differential test: valid messages and deliberately broken ones, derived
// from a project's compiled bundle.json.
//
//   node gen.mjs --bundle gen/shop/bundle.json --out out/shop/messages.ndjson \
//       [--cases out/shop/cases.ndjson] [--count 12000] [--seed 1]
//
// Writes one message per line (raw JSON text: duplicate keys, `1e400`, `\u`
// escapes and lone surrogates are written as such; a few lines are not JSON
// or not UTF-8 on purpose) and, in the cases file, one line per message:
//   {"index", "kind", "call", "event", "cats", "faults", "single", "intent"}
// `cats` are the fault categories and edge features of the message, `faults`
// how many deliberate faults it carries (`single` is faults === 1), and
// `intent` whether the generator meant it to be valid (computed with Zod 4's
// rules on the parsed value; informational only: the judge's reference is the
// generated Zod code itself).

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { regexes, util as zutil } from "zod/v4/core";
import { Raw, Obj, clone, serialize, fromPlain } from "./rawjson.mjs";
import { ensureStableCanParse } from "./stable-url.mjs";

// ------------------------------------------------------------------ random

/** A small seeded PRNG (sfc32), seeded from a string. */
export function makeRng(seedText) {
  let h = 1779033703 ^ seedText.length;
  for (let i = 0; i < seedText.length; i++) {
    h = Math.imul(h ^ seedText.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  const next32 = () => {
    h = Math.imul(h ^ (h >>> 16), 2246822507);
    h = Math.imul(h ^ (h >>> 13), 3266489909);
    return (h ^= h >>> 16) >>> 0;
  };
  let a = next32(),
    b = next32(),
    c = next32(),
    d = next32();
  const u32 = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 15; i++) u32();
  const rng = {
    float: () => u32() / 4294967296,
    int: (lo, hi) => lo + Math.floor(rng.float() * (hi - lo + 1)),
    chance: (p) => rng.float() < p,
    pick: (arr) => arr[Math.floor(rng.float() * arr.length)],
    shuffle: (arr) => {
      for (let i = arr.length - 1; i > 0; i--) {
        const j = Math.floor(rng.float() * (i + 1));
        [arr[i], arr[j]] = [arr[j], arr[i]];
      }
      return arr;
    },
    weighted: (pairs) => {
      const total = pairs.reduce((s, [w]) => s + w, 0);
      let r = rng.float() * total;
      for (const [w, v] of pairs) {
        if ((r -= w) < 0) return v;
      }
      return pairs[pairs.length - 1][1];
    },
  };
  return rng;
}

// ------------------------------------------------------------------ Zod's rules (for `intent`)

const RE = {
  email: regexes.email,
  uuid: regexes.uuid(),
  date: regexes.date,
  "date-time": regexes.datetime({ offset: false, local: false, precision: null }),
  "date-time-offset": regexes.datetime({ offset: true, local: false, precision: null }),
};

function formatOk(format, s) {
  if (format === "uri") return URL.canParse(s.trim());
  return RE[format].test(s);
}

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const cpLen = (s) => [...s].length; // code points; a lone surrogate counts one, as in Zod

/** Whether a parsed JSON value satisfies a bundle schema, by Zod 4's rules (approximately). */
export function checkValue(s, v) {
  if (v === null) return !!s.nullable;
  switch (s.type) {
    case "string":
    case "timestamp": {
      if (typeof v !== "string") return false;
      const format = s.type === "timestamp" ? "date-time" : s.format;
      if (format && !formatOk(format, v)) return false;
      if (s["min-length"] !== undefined && cpLen(v) < s["min-length"]) return false;
      if (s["max-length"] !== undefined && cpLen(v) > s["max-length"]) return false;
      if (s.pattern !== undefined && !new RegExp(s.pattern).test(v)) return false;
      return true;
    }
    case "number":
    case "integer": {
      if (typeof v !== "number" || !Number.isFinite(v)) return false;
      if (s.type === "integer" && !Number.isSafeInteger(v)) return false;
      if (s.min !== undefined && v < s.min) return false;
      if (s.max !== undefined && v > s.max) return false;
      if (s["multiple-of"] !== undefined && zutil.floatSafeRemainder(v, s["multiple-of"]) !== 0) return false;
      return true;
    }
    case "boolean":
      return typeof v === "boolean";
    case "enum":
      return s.values.includes(v);
    case "object": {
      if (!isObject(v)) return false;
      const props = s.properties ?? {};
      for (const [k, p] of Object.entries(props)) {
        if (!Object.hasOwn(v, k)) {
          if (!p.optional) return false;
        } else if (!checkValue(p, v[k])) return false;
      }
      if ((s["unknown-keys"] ?? "strip") === "strict") {
        for (const k of Object.keys(v)) if (!Object.hasOwn(props, k)) return false;
      }
      return true;
    }
    case "array": {
      if (!Array.isArray(v)) return false;
      if (s["max-length"] !== undefined && v.length > s["max-length"]) return false;
      if (s["min-length"] !== undefined && v.length < s["min-length"]) return false;
      return v.every((x) => checkValue(s.items, x));
    }
    default:
      throw new Error(`unknown type ${s.type}`);
  }
}

// ------------------------------------------------------------------ the envelope

export const CALLS = ["track", "identify", "page", "screen", "group", "alias"];
const ID = { type: "string", nullable: true, optional: true };
const LOOSE = { type: "object", "unknown-keys": "passthrough", optional: true, properties: {} };
const TS = { type: "string", format: "date-time-offset", optional: true };
const REQUIRED = { type: "string", "min-length": 1 };

/** The envelope of a call type as a bundle schema (a passthrough object). */
export function envelopeSchema(call) {
  const p = {
    anonymousId: ID,
    context: LOOSE,
    integrations: LOOSE,
    messageId: { type: "string", "min-length": 1, optional: true },
    sentAt: TS,
    timestamp: TS,
    userId: ID,
  };
  if (call === "track") Object.assign(p, { event: REQUIRED, properties: LOOSE });
  if (call === "identify") p.traits = LOOSE;
  if (call === "page" || call === "screen") Object.assign(p, { name: { type: "string", optional: true }, properties: LOOSE });
  if (call === "group") Object.assign(p, { groupId: REQUIRED, traits: LOOSE });
  if (call === "alias") Object.assign(p, { previousId: REQUIRED, userId: REQUIRED });
  return { type: "object", "unknown-keys": "passthrough", properties: p };
}

/** What the generator expects `validateMessage` to say, on the parsed message. */
export function intentOf(msg, bundle) {
  if (!isObject(msg) || !CALLS.includes(msg.type)) return false;
  let ok = checkValue(envelopeSchema(msg.type), msg);
  const present = (v) => v !== undefined && v !== null && v !== "";
  if (!present(msg.userId) && !present(msg.anonymousId)) ok = false;
  let body;
  let key;
  if (msg.type === "track" && typeof msg.event === "string" && Object.hasOwn(bundle.events, msg.event)) {
    body = bundle.events[msg.event].properties;
    key = "properties";
  } else if (msg.type === "identify") {
    body = bundle.traits.user;
    key = "traits";
  } else if (msg.type === "group") {
    body = bundle.traits.group;
    key = "traits";
  }
  if (body) {
    const v = msg[key] === undefined ? {} : msg[key];
    if (isObject(v) && !checkValue(body, v)) ok = false;
  }
  return ok;
}

// ------------------------------------------------------------------ sample values

const HEX = "0123456789abcdef";
const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM = LETTERS + "0123456789";
const hex = (rng, n) => Array.from({ length: n }, () => rng.pick(HEX)).join("");

function uuid(rng, version = rng.int(1, 8), variant = rng.pick("89ab")) {
  return `${hex(rng, 8)}-${hex(rng, 4)}-${version}${hex(rng, 3)}-${variant}${hex(rng, 3)}-${hex(rng, 12)}`;
}

const pad = (n, w) => String(n).padStart(w, "0");

const DATETIME_VALID = [
  "2024-01-01T00:00:00Z",
  "2024-02-29T12:30:45Z",
  "2000-02-29T23:59:59Z",
  "1999-12-31T23:59:59.999Z",
  "2024-06-15T08:00:00.5Z",
  "2024-06-15T08:00:00.123456789Z",
  "2024-06-15T08:00:00.123456789012345678901234567890Z",
  "0000-01-01T00:00:00Z",
  "9999-12-31T23:59:59Z",
  "2400-02-29T00:00:00Z",
  "1600-02-29T00:00:00Z",
  "0000-02-29T00:00:00Z",
  "2024-04-30T00:00:00Z",
];
const DATETIME_INVALID = [
  "2024-01-01T00:00Z", // Zod 4.6.7 requires seconds with Z or an offset
  "2024-02-29T23:59Z",
  "2024-01-01T24:00:00Z",
  "2024-01-01T24:00Z",
  "2024-01-01T23:60:00Z",
  "2024-01-01T23:59:60Z",
  "1900-02-29T00:00:00Z",
  "2023-02-29T00:00:00Z",
  "2100-02-29T00:00:00Z",
  "2024-04-31T00:00:00Z",
  "2024-13-01T00:00:00Z",
  "2024-00-01T00:00:00Z",
  "2024-01-00T00:00:00Z",
  "2024-01-32T00:00:00Z",
  "2024-01-01t00:00:00Z",
  "2024-01-01T00:00:00z",
  "2024-01-01 00:00:00Z",
  "2024-01-01T00:00:00",
  "2024-01-01T00:00",
  "2024-01-01T00:00:00.Z",
  "2024-01-01T00:00:00,5Z",
  "2024-01-01",
  "2024-1-01T00:00:00Z",
  "+002024-01-01T00:00:00Z",
  "2024-01-01T0:00:00Z",
  "2024-01-01T00:00:00ZZ",
  " 2024-01-01T00:00:00Z",
  "2024-01-01T00:00:00Z ",
  "2024-01-01T00:00:00Z\n",
  "2024-01-01T00Z",
  "２０２４-01-01T00:00:00Z",
  "2024-01-01T00:00:00.1.2Z",
];
const OFFSET_VALID = [
  "2024-01-01T00:00:00+02:00",
  "2024-01-01T00:00:00-23:59",
  "2024-01-01T00:00:00+23:59",
  "2024-01-01T00:00:00+00:00",
  "2024-01-01T00:00:00-00:00",
  "2024-07-04T10:20:30.456-05:30",
  "2024-02-29T12:00:00+14:00",
];
const OFFSET_INVALID = [
  "2024-01-01T00:00+02:00", // no seconds
  "2024-01-01T00:00-05:00",
  "2024-01-01T00:00:00+24:00",
  "2024-01-01T00:00:00+02",
  "2024-01-01T00:00:00+0200",
  "2024-01-01T00:00:00-00:60",
  "2024-01-01T00:00:00+2:00",
  "2024-01-01T00:00:00\u221202:00",
  "2024-01-01T00:00:00 +02:00",
  "2024-01-01T00:00:00+02:00Z",
  "2024-01-01T00:00:00Z+02:00",
];
const DATE_VALID = [
  "2024-02-29",
  "2000-02-29",
  "0000-02-29",
  "2400-02-29",
  "1600-02-29",
  "0004-02-29",
  "2023-02-28",
  "2024-12-31",
  "2024-01-31",
  "2024-04-30",
  "9999-12-31",
  "0001-01-01",
];
const DATE_INVALID = [
  "1900-02-29",
  "2100-02-29",
  "2023-02-29",
  "0100-02-29",
  "2024-02-30",
  "2024-04-31",
  "2024-06-31",
  "2024-13-01",
  "2024-00-10",
  "2024-01-00",
  "2024-01-32",
  "2024-1-01",
  "24-01-01",
  "2024/01/01",
  "2024-01-01T00:00:00Z",
  "2024-01-01 ",
  " 2024-01-01",
  "20240101",
  "+2024-01-01",
  "２０２４-01-01",
  "2024-01-01\n",
  "2024-02-29x",
  "99999-01-01",
];
const UUID_VALID = (rng) => [
  uuid(rng, 1, "8"),
  uuid(rng, 4, "9"),
  uuid(rng, 7, "a"),
  uuid(rng, 8, "b"),
  uuid(rng, 3, "A").toUpperCase(),
  uuid(rng, 5, "B"),
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "123e4567-e89b-42d3-a456-426614174000",
  "A987FBC9-4BED-3078-8F07-9141BA07C9F3",
];
const UUID_INVALID = (rng) => [
  uuid(rng, 0, "8"),
  uuid(rng, 9, "8"),
  uuid(rng, "f", "8"),
  uuid(rng, 4, "7"),
  uuid(rng, 4, "c"),
  uuid(rng, 4, "0"),
  uuid(rng, 4, "f"),
  "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
  "00000000-0000-0000-0000-000000000001",
  "123e4567e89b42d3a456426614174000",
  "{123e4567-e89b-42d3-a456-426614174000}",
  "urn:uuid:123e4567-e89b-42d3-a456-426614174000",
  "123e4567-e89b-42d3-a456-42661417400",
  "123e4567-e89b-42d3-a456-4266141740000",
  "123e4567-e89b-42d3-a456-42661417400g",
  " 123e4567-e89b-42d3-a456-426614174000",
  "123e4567-e89b-42d3-a456-426614174000\n",
  "123e4567-e89b42d3-a456--426614174000",
  "",
];
const EMAIL_VALID = [
  "a@b.co",
  "first.last+tag@sub.example.com",
  "o'neil@ex.org",
  "'a@b.co",
  "a-@b.cd",
  "_@b.cd",
  "-a@b.co",
  "a@b-c.de",
  "a@1b.cd",
  "A@B.CO",
  "a.b.c@d.ef",
  "x@xn--80ak6aa92e.com",
  "user+mailbox/department@example.com".replace("/department", ""),
  "a@b.museum",
];
const EMAIL_INVALID = [
  "",
  "a",
  "@b.co",
  ".a@b.co",
  "a..b@c.co",
  "a.@b.co",
  "a'@b.co",
  "a.'@b.co",
  "a@b",
  "a@b.c",
  "a@-b.co",
  "a@b..co",
  "a@b.c0",
  "a@@b.co",
  "a b@c.co",
  "é@b.co",
  "a@b.co.",
  "a@b_c.co",
  "a@[1.2.3.4]",
  '"a"@b.co',
  "a@b.co\n",
  " a@b.co",
  "a@b.c-o",
  "a@.b.co",
  "a@b.co@c.co",
  "a@bé.co",
];
const URI_VALID = [
  "https://example.com",
  "https://example.com/a/b?c=d#e",
  " https://example.com ",
  "\thttps://example.com\n",
  "mailto:x@y.z",
  "urn:isbn:0451450523",
  "a:",
  "a+b.-c:x",
  "javascript:alert(1)",
  "file:///C:/x",
  "http:/example.com",
  "http:example.com",
  "http://user:pa ss@host/p a t h",
  "http://[::1]:65535/",
  "http://[::ffff:1.2.3.4]",
  "http://0300.0250.0.01",
  "http://1.2.3",
  "http://4294967295",
  "http://0x7fffffff",
  "http://☃.net",
  "http://ＥＸＡＭＰＬＥ.com",
  "http://a\u00adb.com",
  "http://ß.com",
  "http://xn--ls8h.la",
  "https://%E2%98%83.com",
  "http://-a.com",
  "http://a_b.com",
  "http://ab--cd.com",
  "http://a@b@c",
  "http://@a.com",
  "https://a.com/\u{1F600}",
  "https://a.com#\u0000",
  "blob:https://a.com/uuid",
  "h://a",
  "ht\ttp://a.com",
  "\u0001http://a.com",
  "http://1.2.3.4.",
  "https://a.com:443/",
  "http://host:/",
  "foo://a%zz",
  "http://exa%41mple.com",
  "http://a.b./",
  "\u00a0https://example.com\u3000",
  "\ufeffhttps://example.com",
];
const URI_INVALID = [
  "",
  "example.com",
  "//example.com",
  "/path",
  "http://",
  "https://",
  "http://example.com:65536",
  "http://[::1",
  "http://[1:2:3:4:5:6:7:8:9]",
  "http://1.2.3.256",
  "http://256.1.1.1",
  "http://09.1.1.1",
  "http://foo.09",
  "http://foo.0x",
  "http://4294967296",
  "http://1.2.3.4.5",
  "http://ex ample.com",
  "http://a<b.com",
  "http://a^b.com",
  "http://a|b",
  "http://a%7Cb.com",
  "non-special://a b",
  "foo://[",
  "http://\u0000x",
  "http://host:8a",
  "https://a.com:0x50",
  "http://a:b@",
  "http://xn--a.com",
  "http://xn--",
  "http://a..b/",
  "http://\u200d.com",
  "1a:",
  "http://[v1.x]",
  "http://%zz",
  "http://a%2eb%00",
];

const ASTRAL = ["😀", "𝒜", "🇫🇷", "𐍈", "👍🏽"];
const UNICODE = ["é", "中", "ß", "\u0301", "\u2028", "\ufeff", "Ω", "\u0000", "\u001f", "\u00a0"];

/** A string of exactly n code points drawn from a style. */
function stringOfLength(rng, n, style) {
  const out = [];
  for (let i = 0; i < n; i++) {
    if (style === "astral") out.push(rng.pick([...ASTRAL.filter((a) => cpLen(a) === 1), "a"]));
    else if (style === "unicode") out.push(rng.pick(["é", "中", "ß", "Ω", "a"]));
    else if (style === "combining") out.push(i % 2 ? "\u0301" : "e");
    else out.push(rng.pick(ALNUM));
  }
  return out.join("");
}

/** A JSON string token whose every character is written as a \u escape. */
function escapedToken(s) {
  let t = '"';
  for (let i = 0; i < s.length; i++) t += "\\u" + s.charCodeAt(i).toString(16).padStart(4, "0");
  return new Raw(t + '"');
}

/** A JSON string token with lone surrogates: `n` code points, `lone` of them lone surrogates. */
function loneToken(rng, n, lone = 1) {
  const parts = [];
  for (let i = 0; i < n; i++) {
    if (i < lone) parts.push(rng.pick(["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud83d"]));
    else parts.push(rng.pick(ALNUM));
  }
  rng.shuffle(parts);
  // A high surrogate escape directly before a low one would pair up: keep them apart.
  for (let i = 0; i + 1 < parts.length; i++) {
    if (/^\\ud[89ab]/.test(parts[i]) && /^\\ud[c-f]/.test(parts[i + 1])) parts[i + 1] = "x";
  }
  return new Raw('"' + parts.join("") + '"');
}

/** A JSON string token writing astral characters as escaped surrogate pairs. */
function pairToken(s) {
  let t = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    if (cp > 0xffff) {
      for (let i = 0; i < ch.length; i++) t += "\\u" + ch.charCodeAt(i).toString(16);
    } else t += JSON.stringify(ch).slice(1, -1);
  }
  return new Raw(t + '"');
}

// ------------------------------------------------------------------ strings from patterns

/** Generates a string a (simple) regular expression matches; best effort. */
function fromPattern(pattern, rng) {
  let i = 0;
  const src = pattern;
  const SPACES = [" ", "\t", "\u00a0", "\ufeff", "\u0085", "\u2028", "\u3000", "\u180e", "\u000b"];
  const UNIVERSE = [..."aZ0_ -.é中😀", "\u0661", "\u00b2", "ß", "\n", "\u2028", "\ufeff", "A", "z", "9", "@", "/", "\\"];
  const classChars = (set, neg) => {
    if (!neg) return set;
    return UNIVERSE.filter((c) => !set.includes(c));
  };
  const escapeSet = (c) => {
    switch (c) {
      case "d":
        return [..."0123456789"];
      case "w":
        return [...ALNUM, "_"];
      case "s":
        return SPACES;
      case "D":
        return UNIVERSE.filter((x) => !/[0-9]/.test(x));
      case "W":
        return UNIVERSE.filter((x) => !/\w/.test(x));
      case "S":
        return UNIVERSE.filter((x) => !/\s/.test(x));
      case "n":
        return ["\n"];
      case "t":
        return ["\t"];
      default:
        return [c];
    }
  };
  const parseAlt = () => {
    const alts = [[]];
    while (i < src.length && src[i] !== ")") {
      if (src[i] === "|") {
        i++;
        alts.push([]);
        continue;
      }
      alts[alts.length - 1].push(parseQuantified());
    }
    return { alt: alts };
  };
  const parseAtom = () => {
    const c = src[i++];
    if (c === "(") {
      if (src[i] === "?") {
        i++;
        if (src[i] === ":") i++;
        else if (src[i] === "<") while (src[i] !== ">") i++, i === src.length && (i = src.length);
        if (src[i] === ">") i++;
      }
      const inner = parseAlt();
      i++; // )
      return inner;
    }
    if (c === "[") {
      let neg = false;
      if (src[i] === "^") {
        neg = true;
        i++;
      }
      const set = [];
      let first = true;
      while (i < src.length && (src[i] !== "]" || first)) {
        first = false;
        let a = src[i++];
        if (a === "\\") {
          const e = src[i++];
          const s = escapeSet(e);
          if (s.length > 1 || /[dwsDWS]/.test(e)) {
            set.push(...s);
            continue;
          }
          a = s[0];
        }
        if (src[i] === "-" && src[i + 1] !== "]" && i + 1 < src.length) {
          i++;
          let b = src[i++];
          if (b === "\\") b = src[i++];
          for (let x = a.codePointAt(0); x <= b.codePointAt(0); x++) set.push(String.fromCodePoint(x));
        } else set.push(a);
      }
      i++; // ]
      return { set: classChars(set, neg) };
    }
    if (c === ".") return { set: UNIVERSE.filter((x) => x !== "\n" && x !== "\u2028") };
    if (c === "^" || c === "$") return { lit: "" };
    if (c === "\\") {
      const e = src[i++];
      if (e === "b" || e === "B") return { lit: "" };
      if (e === "p" || e === "P") {
        if (src[i] === "{") while (src[i] !== "}") i++;
        i++;
        return { set: e === "p" ? [..."abcXYZéßΩ中"] : [..."0 -_"] };
      }
      const s = escapeSet(e);
      return s.length === 1 ? { lit: s[0] } : { set: s };
    }
    return { lit: c };
  };
  const parseQuantified = () => {
    const atom = parseAtom();
    let min = 1,
      max = 1;
    const q = src[i];
    if (q === "*" || q === "+" || q === "?") {
      i++;
      min = q === "+" ? 1 : 0;
      max = q === "?" ? 1 : min + 4;
    } else if (q === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
      if (m) {
        i += m[0].length;
        min = +m[1];
        max = m[2] ? (m[3] ? +m[3] : min + 4) : min;
      }
    }
    if (src[i] === "?") i++; // lazy
    return { atom, min, max };
  };
  const ast = parseAlt();
  const gen = (node) => {
    if (node.alt) return rng.pick(node.alt).map(gen).join("");
    if (node.atom) {
      const n = rng.int(node.min, node.max);
      let s = "";
      for (let k = 0; k < n; k++) s += gen(node.atom);
      return s;
    }
    if (node.set) return node.set.length ? rng.pick(node.set) : "";
    return node.lit;
  };
  return gen(ast);
}

// ------------------------------------------------------------------ valid values

function formatSamples(format, rng) {
  switch (format) {
    case "email":
      return [...EMAIL_VALID];
    case "uri":
      return [...URI_VALID];
    case "uuid":
      return UUID_VALID(rng);
    case "date":
      return [...DATE_VALID];
    case "date-time":
      return [...DATETIME_VALID];
    case "date-time-offset":
      return [...DATETIME_VALID, ...OFFSET_VALID];
    default:
      throw new Error(format);
  }
}

function formatBad(format, rng) {
  switch (format) {
    case "email":
      return EMAIL_INVALID;
    case "uri":
      return URI_INVALID;
    case "uuid":
      return UUID_INVALID(rng);
    case "date":
      return DATE_INVALID;
    case "date-time":
      return [...DATETIME_INVALID, ...OFFSET_VALID.slice(0, 3)];
    case "date-time-offset":
      return [...DATETIME_INVALID.filter((s) => !/\+02:00$/.test(s)), ...OFFSET_INVALID];
    default:
      throw new Error(format);
  }
}

function validString(s, rng) {
  const ok = (x) => checkValue({ ...s, nullable: false }, x);
  const format = s.type === "timestamp" ? "date-time" : s.format;
  if (format) {
    const c = rng.shuffle(formatSamples(format, rng)).filter((x) => !/^\s|\s$/.test(x) || rng.chance(0.3));
    for (const x of c) if (ok(x)) return x;
  }
  if (s.pattern !== undefined) {
    let x = "";
    for (let k = 0; k < 60; k++) {
      x = fromPattern(s.pattern, rng);
      if (ok(x)) return x;
    }
    return x;
  }
  const min = s["min-length"] ?? 0;
  const max = s["max-length"] ?? min + 12;
  const n = rng.int(min, Math.min(max, min + 12));
  return stringOfLength(rng, n, rng.weighted([[6, "ascii"], [1, "unicode"], [1, "astral"]]));
}

function decimalsOf(x) {
  const t = String(x);
  if (t.includes("e-")) return Number(t.split("e-")[1]) + (t.split("e-")[0].split(".")[1]?.length ?? 0);
  return t.split(".")[1]?.length ?? 0;
}

function validNumber(s, rng) {
  const int = s.type === "integer";
  let lo = s.min ?? (int ? -1000 : -1000);
  let hi = s.max ?? lo + 2000;
  if (s.min === undefined && s.max !== undefined) lo = hi - 2000;
  hi = Math.min(hi, lo + 1e6);
  const m = s["multiple-of"];
  if (m !== undefined) {
    const kLo = Math.ceil(lo / m - 1e-9);
    const kHi = Math.floor(hi / m + 1e-9);
    const k = rng.int(kLo, Math.max(kLo, kHi));
    const d = decimalsOf(m);
    const v = Number((k * m).toFixed(Math.min(d, 100)));
    return int ? Math.round(v) : v;
  }
  if (int) return rng.int(Math.ceil(lo), Math.floor(hi));
  return Number((lo + rng.float() * (hi - lo)).toFixed(2));
}

/** A valid value of a schema; `full` includes every optional key and at least one array item. */
export function validValue(s, rng, full = false) {
  if (s.nullable && !full && rng.chance(0.1)) return null;
  switch (s.type) {
    case "string":
    case "timestamp":
      return validString(s, rng);
    case "number":
    case "integer":
      return validNumber(s, rng);
    case "boolean":
      return rng.chance(0.5);
    case "enum":
      return rng.pick(s.values);
    case "object": {
      const o = new Obj();
      for (const [k, p] of Object.entries(s.properties ?? {})) {
        if (!p.optional || full || rng.chance(0.5)) o.push(k, validValue(p, rng, full));
      }
      return o;
    }
    case "array": {
      const min = s["min-length"] ?? 0;
      const max = s["max-length"] ?? min + 3;
      const n = full ? Math.min(Math.max(min, 1), max) : rng.int(min, Math.min(max, min + 3));
      return Array.from({ length: n }, () => validValue(s.items, rng, full));
    }
    default:
      throw new Error(s.type);
  }
}

// ------------------------------------------------------------------ variants

const DELETE = Symbol("delete");

/** Values of the wrong JSON type for a schema (and objects with a `length` key). */
function wrongTypes(s, rng) {
  const out = [];
  const t = s.type;
  const add = (value, ...cats) => out.push({ value, cats: ["wrong-type", ...cats] });
  const stringy = t === "string" || t === "timestamp" || t === "enum";
  if (!stringy) add("x"), add("1");
  if (t === "boolean") add("true");
  if (t !== "number" && t !== "integer") add(0), add(1.5), add(new Raw("1e400"), "infinity"), add(-7);
  if (t !== "boolean") add(true), add(false);
  if (t !== "array") add([]), add(["x", 1]);
  if (t !== "object") {
    add(new Obj());
    add(new Obj([["a", 1]]));
    add(new Obj([["length", 0]]), "length-object");
    add(new Obj([["length", 1e9]]), "length-object");
    add(new Obj([["length", null]]), "length-object");
    add(new Obj([["length", "x"]]), "length-object");
  }
  if (t === "enum") add([rng.pick(s.values)]);
  // Zod runs length checks on any value with a `.length`, even of the wrong type.
  const min = s["min-length"];
  const max = s["max-length"];
  if (t === "string" || t === "array") {
    for (const n of [min, max].filter((x) => x !== undefined)) {
      for (const len of [n - 1, n, n + 1].filter((x) => x >= 0 && x <= 400)) {
        if (t === "string") add(Array.from({ length: len }, () => 1), "wrong-type-length");
        else {
          add(stringOfLength(rng, len, "ascii"), "wrong-type-length");
          if (len > 0) add(stringOfLength(rng, len, "astral"), "wrong-type-length", "astral");
        }
        add(new Obj([["length", len]]), "length-object");
      }
    }
  }
  return out;
}

function stringVariants(s, rng) {
  const out = [];
  const add = (value, ...cats) => out.push({ value, cats });
  const format = s.type === "timestamp" ? "date-time" : s.format;
  const fcat = s.type === "timestamp" ? "timestamp" : format ? `format:${format}` : null;
  add("", "empty-string");
  if (format) {
    for (const x of formatSamples(format, rng)) add(x, fcat);
    for (const x of formatBad(format, rng)) add(x, fcat);
    const good = formatSamples(format, rng)[0];
    add(escapedToken(good), fcat, "escape");
    add(new Raw(JSON.stringify(good).slice(0, -1) + '\\ud800"'), fcat, "lone-surrogate");
    add(good + "😀", fcat, "astral");
    if (format === "date" || format === "date-time" || format === "date-time-offset") {
      // Leap years and month lengths over random years.
      for (let k = 0; k < 6; k++) {
        const y = pad(rng.int(0, 9999), 4);
        const d = `${y}-02-29`;
        add(format === "date" ? d : `${d}T00:00:00Z`, fcat, "leap-year");
        const mo = rng.int(0, 13);
        const day = rng.int(0, 32);
        const d2 = `${pad(rng.int(0, 9999), 4)}-${pad(mo, 2)}-${pad(day, 2)}`;
        add(format === "date" ? d2 : `${d2}T${pad(rng.int(0, 25), 2)}:${pad(rng.int(0, 61), 2)}:${pad(rng.int(0, 61), 2)}Z`, fcat);
      }
    }
    if (format === "email") {
      for (let k = 0; k < 4; k++) {
        const local = fromPattern("^[A-Za-z0-9_'+.-]{1,6}$", rng);
        const dom = fromPattern("^[a-z0-9-]{1,5}(\\.[a-z0-9-]{1,4}){0,2}\\.[a-zA-Z0-9]{1,3}$", rng);
        add(`${local}@${dom}`, fcat);
      }
    }
    if (format === "uuid") {
      for (let k = 0; k < 4; k++) add(uuid(rng, rng.int(0, 9), rng.pick("0123456789abcdefABCDEF")), fcat);
    }
  }
  const min = s["min-length"];
  const max = s["max-length"];
  for (const [bound, cat] of [
    [min, "min-length"],
    [max, "max-length"],
  ]) {
    if (bound === undefined) continue;
    for (const n of [bound - 1, bound, bound + 1]) {
      if (n < 0) continue;
      add(stringOfLength(rng, n, "ascii"), cat);
      if (n > 0) {
        add(stringOfLength(rng, n, "astral"), cat, "astral");
        add(stringOfLength(rng, n, "unicode"), cat, "unicode");
        add(stringOfLength(rng, n, "combining"), cat, "combining");
        add(escapedToken(stringOfLength(rng, n, "ascii")), cat, "escape");
        add(pairToken(stringOfLength(rng, n, "astral")), cat, "escape", "surrogate-pair");
        add(loneToken(rng, n, 1), cat, "lone-surrogate");
        if (n > 1) add(loneToken(rng, n, 2), cat, "lone-surrogate");
      }
    }
    // A string that is long in UTF-16 units but within bounds in code points.
    if (bound > 0) add("😀".repeat(bound), cat, "astral");
  }
  if (s.pattern !== undefined) {
    const c = "pattern";
    for (let k = 0; k < 4; k++) add(fromPattern(s.pattern, rng), c);
    const good = validString({ ...s, format: undefined }, rng);
    add(good + "\n", c);
    add(" " + good, c);
    add(good.toLowerCase(), c);
    add(good.toUpperCase(), c);
    add(good + "😀", c, "astral");
    add("😀" + good, c, "astral");
    if (good.length > 1) add(good.slice(0, -1), c);
    if (good.length > 1) add(good.slice(0, 1) + "😀" + good.slice(2), c, "astral");
    if (good.length > 0) add(good.slice(0, -1) + rng.pick(["\u0661", "é", "\u00b2", "_", "\ufeff", "\u0085", "\u180e"]), c, "unicode");
    add(escapedToken(good), c, "escape");
    add(new Raw(JSON.stringify(good).slice(0, -1) + '\\udc00"'), c, "lone-surrogate");
    add(new Raw('"\\ud800' + JSON.stringify(good).slice(1)), c, "lone-surrogate");
    for (const x of ["😀😀", "😀", "ab", "é", "\u0661\u0662", "\ufeff", "\u0085", "\u180e", "\u00a0", " ", "cat", "a cat!", "concat", "\u00e9cat", "p{L}", "ab\u0301"])
      add(x, c, "unicode");
  }
  if (!format && s.pattern === undefined) {
    add("😀", "astral");
    add("\u0000", "control-char");
    add(new Raw('"\\ud800"'), "lone-surrogate");
    add(new Raw('"\\udc00\\ud800"'), "lone-surrogate");
    add(new Raw('"\\ud83d\\ude00"'), "escape", "surrogate-pair");
    add(new Raw('"\\u0041\\u00e9\\/\\b\\f\\n\\r\\t\\"\\\\"'), "escape");
    add("\u2028\u2029", "unicode");
    add("x".repeat(3000), "long-string");
  }
  return out;
}

function numberVariants(s, rng) {
  const out = [];
  const add = (value, ...cats) => out.push({ value, cats });
  const int = s.type === "integer";
  const MAX = Number.MAX_SAFE_INTEGER;
  for (const [v, ...cats] of [
    [new Raw("1e400"), "infinity", "huge-number"],
    [new Raw("-1e400"), "infinity", "huge-number"],
    [new Raw("1e-400"), "number-syntax"],
    [new Raw("-0"), "neg-zero"],
    [new Raw("-0.0"), "neg-zero"],
    [new Raw("0.0"), "number-syntax"],
    [new Raw("1.0"), "number-syntax"],
    [new Raw("1E2"), "number-syntax"],
    [new Raw("1e+2"), "number-syntax"],
    [new Raw("0.1e1"), "number-syntax"],
    [new Raw("100e-2"), "number-syntax"],
    [new Raw("123456789012345678901234567890"), "huge-number"],
    [new Raw("0.00000000000000000000000000001"), "number-syntax"],
    [new Raw("1.7976931348623157e309"), "infinity", "huge-number"],
    [new Raw("2.4703282292062327e-324"), "number-syntax"],
    [MAX, "safe-int"],
    [MAX + 1, "safe-int"],
    [new Raw("9007199254740993"), "safe-int"],
    [-MAX, "safe-int"],
    [-MAX - 1, "safe-int"],
    [1e21, "huge-number"],
    [-1e21, "huge-number"],
    [1e300, "huge-number"],
    [-1e300, "huge-number"],
    [Number.MAX_VALUE, "huge-number"],
    [5e-324, "float"],
    [0.5, "float"],
    [-1.5, "float"],
    [0, "zero"],
  ])
    add(v, ...cats);
  for (const [bound, cat, dir] of [
    [s.min, "min", -1],
    [s.max, "max", 1],
  ]) {
    if (bound === undefined) continue;
    add(bound, cat);
    add(bound + dir * (int ? 1 : 1e-9), cat);
    add(bound - dir * (int ? 1 : 0.5), cat);
    add(dir < 0 ? nextDown(bound) : nextUp(bound), cat, "float");
    add(bound + dir * 0.5, cat, "float");
    const text = JSON.stringify(bound);
    if (!/[.e]/.test(text)) add(new Raw(`${text}.0`), cat, "number-syntax");
    add(new Raw(text.includes("e") ? text.replace("e", "0e") : `${text}e0`), cat, "number-syntax");
    if (bound === 0) add(new Raw("-0"), cat, "neg-zero");
  }
  const m = s["multiple-of"];
  if (m !== undefined) {
    const c = "multiple-of";
    const d = decimalsOf(m);
    for (const k of [1, 2, 3, 7, 10, 29, 100, 203, 1001, 123456, 99999999]) {
      add(k * m, c, "float-precision");
      add(Number((k * m).toFixed(Math.min(d, 100))), c);
      add(new Raw((k * m).toFixed(Math.min(d, 100))), c, "number-syntax");
    }
    add(m / 2, c);
    add(m * 1.5, c);
    add(m / 3, c, "float-precision");
    add(m * 1e15 + m, c, "float-precision", "huge-number");
    add(0.1 + 0.2, c, "float-precision");
    for (const t of ["0.07", "0.3", "1.1", "2.03", "4.35", "0.035", "19.99", "1234567.89", "0.0700000001", "1e-7", "3e-7", "1.5e-7", "1e21", "1e300", "9007199254740993"])
      add(new Raw(t), c, "float-precision");
  }
  if (int) {
    add(1.5, "integer");
    add(new Raw("2.0000000000000001"), "integer", "float-precision");
    add(new Raw("1e0"), "integer", "number-syntax");
    add(-0.5, "integer");
  }
  return out;
}

function nextUp(x) {
  if (x === 0) return 5e-324;
  const b = new Float64Array([x]);
  const u = new BigInt64Array(b.buffer);
  u[0] += x > 0 ? 1n : -1n;
  return b[0];
}
function nextDown(x) {
  return -nextUp(-x);
}

function enumVariants(s, rng) {
  const out = [];
  const add = (value, ...cats) => out.push({ value, cats });
  for (const v of s.values) add(v, "enum-hit");
  const v = rng.pick(s.values);
  add(escapedToken(v), "enum-hit", "escape");
  add(v.toLowerCase() === v ? v.toUpperCase() : v.toLowerCase(), "enum-miss");
  add(v + " ", "enum-miss");
  add(" " + v, "enum-miss");
  add("", "enum-miss", "empty-string");
  add(v + "\u0000", "enum-miss");
  add(v.normalize("NFD") === v ? v + "\u0301" : v.normalize("NFD"), "enum-miss", "unicode");
  add("other", "enum-miss");
  add(new Raw(JSON.stringify(v).slice(0, -1) + '\\ud800"'), "enum-miss", "lone-surrogate");
  return out;
}

function objectVariants(s, rng) {
  const out = [];
  const mode = s["unknown-keys"] ?? "strip";
  const ek = `extra-key:${mode}`;
  const base = (old) => (old instanceof Obj ? clone(old) : validValue(s, rng, true));
  const add = (fn, ...cats) => out.push({ fn, cats });
  const declared = Object.keys(s.properties ?? {});
  add((o) => o.push("x_extra", "v"), ek);
  add((o) => (o.push("x_extra", 1), o.push("y", null), o.push("Z", new Obj())), ek);
  add((o) => {
    for (const k of ["10", "2", "01", "-1", "b", "4294967294", "4294967295", "a"]) o.push(k, 1);
  }, ek, "integer-like-key");
  add((o) => o.push("__proto__", new Obj([["polluted", true]])), ek, "proto-key");
  add((o) => (o.push("constructor", 1), o.push("toString", "x")), ek, "proto-key");
  add((o) => o.push("", 1), ek, "empty-key");
  add((o) => o.push("x_dup", 1).push("x_dup", 2), ek, "duplicate-key");
  add((o) => o.push(new Raw('"\\udc00"'), 1), ek, "lone-surrogate-key");
  add((o) => o.push(new Raw('"\\ud800"'), 1).push(new Raw('"\\ud801"'), 2), ek, "lone-surrogate-key");
  add((o) => o.push("\ufffd", 1).push(new Raw('"\\udfff"'), 2), ek, "lone-surrogate-key");
  add((o) => o.push('q"uote\\d', 1), ek, "escape");
  add((o) => o.push("😀", 1).push("é", 2), ek, "unicode");
  add((o) => o.push("deep", nest(64)), ek, "deep-nesting");
  add((o) => o.push("deep", nest(3000)), ek, "deep-nesting");
  if (declared.length) {
    const k = rng.pick(declared);
    add((o) => o.push(k.toUpperCase() === k ? k.toLowerCase() + "_" : k.toUpperCase(), 1), ek);
    add((o) => o.push(k + " ", 1), ek);
  }
  // Declared keys spelled with escapes are still declared.
  for (const k of declared.slice(0, 3)) {
    add((o) => {
      if (!o.has(k)) return;
      const v = o.get(k);
      o.del(k);
      o.push(escapedToken(k), v);
    }, "escaped-key", "escape");
  }
  // Duplicate declared keys: JSON.parse keeps the last value (in the first one's position).
  for (const k of declared.slice(0, 4)) {
    const p = s.properties[k];
    const bads = badValues(p, rng);
    if (!bads.length) continue;
    const bad = () => rng.pick(bads);
    add((o) => (o.del(k), o.push(k, bad()), o.push(k, validValue(p, rng, true))), "duplicate-key");
    add((o) => (o.del(k), o.push(k, validValue(p, rng, true)), o.push(k, bad())), "duplicate-key");
    add((o) => (o.del(k), o.push(k, bad()), o.push(k, bad())), "duplicate-key");
    add((o) => {
      o.del(k);
      o.push(k, bad());
      for (const k2 of declared.filter((x) => x !== k).slice(0, 2)) {
        const b2 = badValues(s.properties[k2], rng);
        if (b2.length) o.del(k2).push(k2, rng.pick(b2));
      }
      o.push(k, rng.chance(0.5) ? bad() : validValue(p, rng, true));
      o.m = [o.m[o.m.length - 1], ...o.m.slice(0, -1)];
    }, "duplicate-key", "key-order");
  }
  // Several bad fields in a shuffled order: issues must come out in Zod's order.
  if (declared.length > 1) {
    for (let r = 0; r < 3; r++) {
      add((o) => {
        for (const k of rng.shuffle([...declared]).slice(0, 3)) {
          const b = badValues(s.properties[k], rng);
          if (b.length) o.del(k).push(k, rng.pick(b));
        }
        if (!o.hasDuplicates()) rng.shuffle(o.m);
      }, "key-order");
    }
  }
  add((o) => {
    o.m = [];
  }, "empty-object");
  // Each variant extends the value already in place (or a fresh valid one).
  return out.map(({ fn, cats }) => ({
    cats,
    make: (old) => {
      const o = base(old);
      fn(o);
      return o;
    },
  }));
}

/** `[[[...]]]` nested n deep. */
function nest(n) {
  return new Raw("[".repeat(n) + "]".repeat(n));
}

function arrayVariants(s, rng) {
  const out = [];
  const add = (make, ...cats) => out.push({ make, cats });
  const min = s["min-length"];
  const max = s["max-length"];
  const item = () => validValue(s.items, rng, false);
  const badItem = () => rng.pick(badValues(s.items, rng, true));
  const arr = (n) => Array.from({ length: n }, item);
  add(() => [], "empty-array");
  for (const [bound, cat] of [
    [min, "min-length"],
    [max, "max-length"],
  ]) {
    if (bound === undefined) continue;
    for (const n of [bound - 1, bound, bound + 1]) if (n >= 0) add(() => arr(n), cat);
  }
  if (max !== undefined) {
    // Zod 4 checks an array's size first: too long, and its items are not looked at.
    add(() => {
      const a = arr(max + 1);
      a[0] = badItem();
      return a;
    }, "max-length", "array-over-max+bad-item");
    add(() => {
      const a = arr(max + 1);
      a[a.length - 1] = badItem();
      return a;
    }, "max-length", "array-over-max+bad-item");
    add(() => {
      const a = arr(max + 3);
      a[1] = badItem();
      a[2] = badItem();
      return a;
    }, "max-length", "array-over-max+bad-item");
  }
  if (min !== undefined && min > 0) {
    add(() => {
      const a = arr(Math.max(min - 1, 1));
      a[0] = badItem();
      return a;
    }, "min-length", "array-under-min+bad-item");
  }
  add(() => {
    const a = arr(3);
    a[2] = badItem();
    return a;
  }, "bad-item");
  add(() => [item(), badItem(), item(), badItem()], "bad-item");
  if (s.items.type === "integer") add(() => [1.5], "integer", "abort");
  return out;
}

const badCache = new Map();

/** Invalid values for a schema (some of its variants and wrong types), memoised. */
function badValues(s, rng, deep = false) {
  const key = s;
  const memo = badCache.get(key)?.[deep ? 1 : 0];
  if (memo) return memo;
  const bad = computeBad(s, rng, deep);
  const entry = badCache.get(key) ?? [null, null];
  entry[deep ? 1 : 0] = bad;
  badCache.set(key, entry);
  return bad;
}

function computeBad(s, rng, deep) {
  const vs = valueVariants(s, rng, deep)
    .filter((v) => v.make === undefined)
    .map((v) => v.value);
  const bad = vs.filter((v) => !checkValue(s, JSON.parse(serialize(v))));
  if (s.type === "object" || s.type === "array") {
    for (const v of valueVariants(s, rng, deep)) {
      if (v.make) {
        const x = v.make();
        if (!checkValue(s, JSON.parse(serialize(x)))) bad.push(x);
      }
    }
  }
  return bad;
}

const variantCache = new WeakMap();

/** Every variant of a schema node: `{cats, value}` or `{cats, make()}`. */
function valueVariants(s, rng, deep = true) {
  if (!deep && variantCache.has(s)) return variantCache.get(s);
  const out = [];
  out.push({ value: null, cats: [s.nullable ? "null-nullable" : "null-not-nullable"] });
  for (const w of wrongTypes(s, rng)) out.push(w);
  switch (s.type) {
    case "string":
    case "timestamp":
      out.push(...stringVariants(s, rng));
      break;
    case "number":
    case "integer":
      out.push(...numberVariants(s, rng));
      break;
    case "boolean":
      out.push({ value: true, cats: ["boolean"] }, { value: false, cats: ["boolean"] });
      break;
    case "enum":
      out.push(...enumVariants(s, rng));
      break;
    case "object":
      if (deep) out.push(...objectVariants(s, rng));
      break;
    case "array":
      if (deep) out.push(...arrayVariants(s, rng));
      break;
  }
  if (!deep) variantCache.set(s, out);
  return out;
}

// ------------------------------------------------------------------ schema nodes and paths

/** Every node of a schema tree: `{path, schema, required, item}` (array items at index 0). */
function schemaNodes(s, path = [], out = [], required = true, item = false) {
  out.push({ path, schema: s, required, item });
  if (s.type === "object") {
    for (const [k, p] of Object.entries(s.properties ?? {})) schemaNodes(p, [...path, k], out, !p.optional, false);
  } else if (s.type === "array" && s.items) {
    schemaNodes(s.items, [...path, 0], out, true, true);
  }
  return out;
}

function getChild(c, seg) {
  if (c instanceof Obj) return c.get(seg);
  if (Array.isArray(c)) return c[seg];
  return undefined;
}

function setChild(c, seg, v) {
  if (c instanceof Obj) {
    if (v === DELETE) c.del(seg);
    else c.set(seg, v);
  } else c[seg] = v;
}

/**
 * The container and key of `path` under `root` (whose schema is `rootSchema`),
 * creating missing containers with valid values; null when the way is blocked
 * (an earlier fault put something else there).
 */
function locate(root, rootSchema, path, rng) {
  let cur = root;
  let s = rootSchema;
  for (let k = 0; k < path.length; k++) {
    const seg = path[k];
    const cs = typeof seg === "number" ? s.items : s.properties[seg];
    if (k === path.length - 1) {
      if (Array.isArray(cur)) {
        while (cur.length <= seg) cur.push(validValue(cs, rng, true));
      } else if (!(cur instanceof Obj)) return null;
      return { parent: cur, key: seg, schema: cs };
    }
    let next = getChild(cur, seg);
    if (next === undefined) {
      next = validValue(cs, rng, true);
      if (next === null) return null;
      if (Array.isArray(cur)) {
        while (cur.length < seg) cur.push(validValue(cs, rng, true));
      }
      setChild(cur, seg, next);
    }
    const kindOk = cs.type === "object" ? next instanceof Obj : cs.type === "array" ? Array.isArray(next) : false;
    if (!kindOk) return null;
    cur = next;
    s = cs;
  }
  return null;
}

// ------------------------------------------------------------------ messages

function baseEnvelope(call, rng) {
  const o = new Obj([["type", call]]);
  if (rng.chance(0.9)) o.push("messageId", rng.chance(0.5) ? uuid(rng, 4) : `msg-${hex(rng, 10)}`);
  const ids = rng.int(0, 2);
  if (call === "alias") {
    o.push("userId", `user-${hex(rng, 6)}`);
    o.push("previousId", rng.chance(0.5) ? uuid(rng, 4) : `anon-${hex(rng, 6)}`);
  } else {
    if (ids !== 1) o.push("userId", `user-${hex(rng, 6)}`);
    if (ids !== 0) o.push("anonymousId", uuid(rng, 4));
  }
  if (rng.chance(0.6)) o.push("timestamp", rng.pick([...DATETIME_VALID.slice(0, 6), ...OFFSET_VALID]));
  if (rng.chance(0.3)) o.push("sentAt", rng.pick([...DATETIME_VALID.slice(0, 6), ...OFFSET_VALID]));
  if (rng.chance(0.5))
    o.push(
      "context",
      fromPlain({ library: { name: "analytics.js", version: "5.2.0" }, ip: "203.0.113.7", locale: rng.pick(["en-US", "fr-FR"]) }),
    );
  if (rng.chance(0.2)) o.push("integrations", fromPlain({ All: true, Mixpanel: false }));
  if (call === "group") o.push("groupId", `grp-${hex(rng, 6)}`);
  if (call === "page" || call === "screen") {
    if (rng.chance(0.7)) o.push("name", rng.pick(["Home", "Pricing", "", "Checkout 😀"]));
    if (rng.chance(0.6)) o.push("properties", fromPlain({ path: "/", title: "Home", url: "https://example.com/" }));
  }
  return o;
}

/** The body schema and key of a message, if it has one. */
function bodyOf(call, event, bundle) {
  if (call === "track" && event !== undefined && Object.hasOwn(bundle.events, event)) return [bundle.events[event].properties, "properties"];
  if (call === "identify") return [bundle.traits.user, "traits"];
  if (call === "group") return [bundle.traits.group, "traits"];
  return [null, null];
}

const UNDECLARED = ["Button Clicked", "order completed", "Order Completed ", "Video Played", "", "toString", "__proto__", "hasOwnProperty"];

/** A valid message of a call type (for track: of an event, declared or not). */
function baseMessage(bundle, rng, call, event, full) {
  const o = baseEnvelope(call, rng);
  if (call === "track") {
    o.push("event", event);
    const [body] = bodyOf(call, event, bundle);
    if (body) {
      const v = validValue(body, rng, full);
      const required = Object.values(body.properties ?? {}).some((p) => !p.optional);
      if (full || required || v.m.length || rng.chance(0.7)) o.push("properties", v);
    } else if (rng.chance(0.7)) o.push("properties", fromPlain({ any: "thing", n: 1, nested: { ok: true } }));
  } else if (call === "identify" || call === "group") {
    const [body] = bodyOf(call, event, bundle);
    const v = validValue(body, rng, full);
    if (full || v.m.length || rng.chance(0.5)) o.push("traits", v);
  }
  return o;
}

/** Applies a variant at a path; returns whether the node became invalid (a fault), or null if it could not be applied. */
function applyVariant(msg, rootSchema, path, variant, rng) {
  const loc = locate(msg, rootSchema, path, rng);
  if (!loc) return null;
  let value;
  if (variant.kind === "delete") value = DELETE;
  else if (variant.make) value = variant.make(getChild(loc.parent, loc.key));
  else value = clone(variant.value);
  if (value === DELETE && Array.isArray(loc.parent)) return null;
  setChild(loc.parent, loc.key, value);
  if (value === DELETE) return !loc.schema.optional;
  return !checkValue(loc.schema, JSON.parse(serialize(value)));
}

/** Every variant of a node, including deletion of an object key. */
function nodeVariants(node, rng) {
  const out = [];
  if (!node.item && node.path.length) out.push({ kind: "delete", cats: [node.required ? "missing-required" : "absent-optional"] });
  for (const v of valueVariants(node.schema, rng, true)) out.push(v.make ? { make: v.make, cats: v.cats } : { value: v.value, cats: v.cats });
  return out;
}

// ------------------------------------------------------------------ special lines

function specialLines(bundle, rng) {
  const out = [];
  const add = (text, cats, intent = false) => out.push({ text, cats, intent, faults: intent ? 0 : 1 });
  const event = Object.keys(bundle.events)[0];
  const valid = () => {
    const m = baseMessage(bundle, rng, "track", event, true);
    return serialize(m);
  };
  const v = valid();
  // Not objects.
  for (const t of ["[]", '"track"', "1", "null", "true", "false", '[{"type":"track","userId":"u","event":"x"}]', "{}", "-0", "1e400"])
    add(t, ["top-level-non-object"]);
  // Not JSON.
  const broken = [
    v.slice(0, -1) + ",}",
    v.replace(/"/g, "'"),
    v.replace('"type"', "type"),
    '{"type":"track","userId":"u","event":"x","n":NaN}',
    '{"type":"track","userId":"u","event":"x","n":Infinity}',
    '{"type":"track","userId":"u","event":"x","n":01}',
    '{"type":"track","userId":"u","event":"x","n":+1}',
    '{"type":"track","userId":"u","event":"x","n":.5}',
    '{"type":"track","userId":"u","event":"x","n":1.}',
    '{"type":"track","userId":"u","event":"x","n":0x10}',
    '{"type":"track","userId":"u","event":"x","n":1e}',
    '{"type":"track","userId":"u","event":"x","n":-}',
    '{"type":"track","userId":"u","event":"x"} // c',
    '{"type":"track","userId":"u","event":"x"',
    '{"type":"track","userId":"u","event":"x\\x41"}',
    '{"type":"track","userId":"u","event":"x\\u12"}',
    '{"type":"track","userId":"u","event":"x\\u12g4"}',
    '{"type":"track","userId":"u","event":"a\tb"}',
    '{"type":"track","userId":"u","event":"x"}}',
    '{"type":"track","userId":"u","event":"x"}{}',
    '{"type":"track","userId":"u","event":"x"} x',
    '{"type":"track","userId":"u","event":"x",}',
    '{"type":"track",,"userId":"u"}',
    '{"type":"track" "userId":"u"}',
    '{"type":"track","userId":"u","event":tru}',
    '{"type":"track","userId":"u","event":nul}',
    '{"type":"track","userId":"u","event":"x","a":[1,]}',
    '{"type":"track","userId":"u","event":"x","a":[,1]}',
    '{"type":"track","userId":"u","event":"x","a":{"b"}}',
    '{"type":"track","userId":"u","event":"x","a":{1:2}}',
    '{"type":"track","userId":"u","event":"x","a":"\\ud800\\"}',
    '{"type":"track","userId":"u","event":"x","a":True}',
    '{"type":"track","userId":"u","event":"x","a":[' + "[".repeat(50) + "]}",
    '\ufeff{"type":"track","userId":"u","event":"x"}',
    '\u00a0{"type":"track","userId":"u","event":"x"}',
    '{"type":"track","userId":"u","event":"x"}\u2028',
    '{"type":"track","userId":"u","event":"\u0001"}',
  ];
  for (const t of broken) add(t, ["json-syntax"]);
  // Whitespace JSON allows, and a form feed (not JSON whitespace).
  add("  " + v + "  ", ["whitespace"], true);
  add("\t" + v + "\t", ["whitespace"], true);
  add(v + "\r", ["whitespace"], true);
  add(v.replace(/,"/g, ' ,\r\n\t"').replace(/\n/g, " "), ["whitespace"], true);
  add("\f" + v, ["whitespace", "json-syntax"], false);
  add(v + "\f", ["whitespace", "json-syntax"], false);
  // Raw U+2028/U+2029 inside a string are JSON.
  add('{"type":"track","userId":"u\u2028\u2029","event":"Button Clicked"}', ["unicode"], true);
  // Not UTF-8.
  const bytes = (prefix, bad, suffix) => Buffer.concat([Buffer.from(prefix), Buffer.from(bad), Buffer.from(suffix)]);
  const pre = '{"type":"track","userId":"u","event":"Button Clicked","properties":{"s":"';
  const suf = '"}}';
  for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80]])
    out.push({ bytes: bytes(pre, bad, suf), cats: ["invalid-utf8"], intent: false, faults: 1 });
  out.push({ bytes: Buffer.from(pre + "caf\u00e9 ok" + suf), cats: ["unicode"], intent: true, faults: 0 });
  // Nesting: deep but fine, and around the runtime's limit of 100000 levels.
  const deep = (n, where = "context") =>
    `{"type":"track","userId":"u","event":"Button Clicked","${where}":{"x":${"[".repeat(n)}${"]".repeat(n)}}}`;
  for (const n of [1000, 20000, 99999, 100000, 100001]) add(deep(n), ["deep-nesting"], true);
  for (const n of [100002, 100003, 150000]) add(deep(n), ["deep-nesting", "nesting-limit"], true);
  add(deep(100005, "properties"), ["deep-nesting", "nesting-limit"], true);
  add(
    `{"type":"track","userId":"u","event":"Button Clicked","context":{"x":${'{"a":'.repeat(100003)}1${"}".repeat(100003)}}}`,
    ["deep-nesting", "nesting-limit"],
    true,
  );
  add(`{"type":"track","userId":"u","event":"Button Clicked","context":{"x":${"[".repeat(100003)}${"]".repeat(100002)}}}`, [
    "deep-nesting",
    "json-syntax",
  ]);
  return out;
}

/** Message-level variants of the envelope: ids, type, event, body keys, duplicates. */
function envelopeSpecials(bundle, rng) {
  const out = [];
  const events = Object.keys(bundle.events);
  const push = (call, event, fn, cats) => out.push({ call, event, fn, cats });
  // userId / anonymousId combinations.
  const idValues = [
    ["absent"],
    [null],
    [""],
    ["u-1"],
    [0],
    [false],
    [new Obj()],
    [[]],
    [" "],
    [new Raw('"\\u0000"')],
    [new Raw('"\\ud800"')],
    ["x".repeat(5000)],
    [new Obj([["length", 0]])],
  ];
  for (const call of CALLS) {
    for (const [u] of idValues) {
      for (const [a] of idValues) {
        if (rng.chance(0.55) && !(u === "absent" || a === "absent")) continue;
        push(
          call,
          call === "track" ? rng.pick(events.length ? events : ["Button Clicked"]) : undefined,
          (m) => {
            m.del("userId").del("anonymousId");
            if (u !== "absent") m.push("userId", clone(u));
            if (a !== "absent") m.push("anonymousId", clone(a));
          },
          ["ids"],
        );
      }
    }
    // Duplicate ids: the last one counts.
    push(call, undefined, (m) => (m.del("userId").del("anonymousId"), m.push("userId", null), m.push("userId", "u")), ["ids", "duplicate-key"]);
    push(call, undefined, (m) => (m.del("userId").del("anonymousId"), m.push("userId", "u"), m.push("userId", "")), ["ids", "duplicate-key"]);
    // type.
    for (const t of [call.toUpperCase(), ` ${call}`, `${call} `, "", 5, null, [], new Obj(), [call], "Track", "unknown", "identity"])
      push(call, undefined, (m) => m.set("type", clone(t)), ["type"]);
    push(call, undefined, (m) => m.del("type"), ["type"]);
    push(call, undefined, (m) => (m.del("type"), m.push("type", escapedToken(call))), ["type", "escape"]);
    push(call, undefined, (m) => (m.del("type"), m.push("type", "bogus"), m.push("type", call)), ["type", "duplicate-key"]);
    push(call, undefined, (m) => (m.del("type"), m.push("type", call), m.push("type", "bogus")), ["type", "duplicate-key"]);
    push(call, undefined, (m) => (m.del("type"), m.push("type", call), m.push("type", rng.pick(CALLS.filter((c) => c !== call)))), ["type", "duplicate-key"]);
    // Unknown top-level keys are allowed.
    push(call, undefined, (m) => m.push("x_case", new Obj([["k", 1]])).push("__proto__", new Obj([["type", "track"]])), ["top-level-extra-key", "proto-key"]);
    push(call, undefined, (m) => m.push("constructor", 1).push("toString", null).push("10", 1).push("2", 2), ["top-level-extra-key"]);
    // Whole-body keys.
    if (call !== "alias") {
      const key = call === "identify" || call === "group" ? "traits" : "properties";
      for (const v of [null, [], "x", 5, true, new Obj(), new Obj([["length", 0]]), [new Obj()]])
        push(call, call === "track" ? rng.pick(events.length ? events : ["x"]) : undefined, (m) => m.set(key, clone(v)), ["body-type"]);
      push(call, call === "track" ? rng.pick(events.length ? events : ["x"]) : undefined, (m) => m.del(key), ["body-absent"]);
    }
    if (call === "identify" || call === "group" || call === "page") {
      // The "wrong" body key for the call type is just an unknown key.
      push(call, undefined, (m) => m.set(call === "page" ? "traits" : "properties", new Obj([["email", 5]])), ["other-body-key"]);
    }
  }
  // event.
  for (const e of events) {
    push("track", e, (m) => (m.del("event"), m.push("event", escapedToken(e))), ["event", "escape"]);
    push("track", e, (m) => m.set("event", e.toLowerCase()), ["event", "undeclared-event"]);
    push("track", e, (m) => m.set("event", e + " "), ["event", "undeclared-event"]);
  }
  for (const e of [...UNDECLARED, 5, null, [], ["x"], new Obj(), new Obj([["length", 0]])]) push("track", events[0], (m) => m.set("event", clone(e)), ["event"]);
  push("track", events[0], (m) => m.del("event"), ["event", "missing-required"]);
  if (events.length > 1) {
    for (let k = 0; k < 6; k++) {
      const [a, b] = rng.shuffle([...events]);
      push("track", a, (m) => (m.del("event"), m.push("event", b), m.push("event", a)), ["event", "duplicate-key"]);
    }
  }
  for (const key of ["groupId", "previousId"]) {
    const call = key === "groupId" ? "group" : "alias";
    for (const v of ["", null, 5, [], new Obj([["length", 0]]), "😀", new Raw('"\\ud800"')]) push(call, undefined, (m) => m.set(key, clone(v)), [key]);
    push(call, undefined, (m) => m.del(key), [key, "missing-required"]);
  }
  for (const v of ["", null, 5, [], "😀", new Obj()]) push("alias", undefined, (m) => m.set("userId", clone(v)), ["alias-userId"]);
  push("alias", undefined, (m) => m.del("userId"), ["alias-userId", "missing-required"]);
  push("alias", undefined, (m) => (m.del("userId"), m.push("anonymousId", "a")), ["alias-userId", "missing-required"]);
  for (const call of ["page", "screen"]) for (const v of [null, 5, "", "😀", []]) push(call, undefined, (m) => m.set("name", clone(v)), ["name"]);
  return out;
}

// ------------------------------------------------------------------ the generator

/**
 * Generates `count` (at least) messages for a bundle.
 * Returns `[{bytes: Buffer, meta}]`.
 */
export function generate(bundle, { count = 12000, seed = "1" } = {}) {
  const rng = makeRng(`${seed}:${bundle.project?.name ?? ""}`);
  const events = Object.keys(bundle.events);
  const out = [];
  const emit = (msg, meta) => {
    if (rng.chance(0.5)) shuffleDeep(msg, rng);
    const text = serialize(msg);
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const intent = parsed !== undefined && intentOf(parsed, bundle);
    out.push({ bytes: Buffer.from(text, "utf8"), meta: { ...meta, intent } });
  };
  const metaOf = (kind, call, event, cats, faults) => ({
    kind,
    call,
    event: call === "track" ? event : undefined,
    cats: [...new Set([`call:${call}`, ...(call === "track" ? [event !== undefined && Object.hasOwn(bundle.events, event) ? "declared" : "undeclared"] : []), ...cats])].sort(),
    faults,
    single: faults === 1,
  });

  // Roots: declared events, identify and group traits.
  const roots = [
    ...events.map((e) => ({ call: "track", event: e, schema: bundle.events[e].properties, key: "properties" })),
    { call: "identify", schema: bundle.traits.user, key: "traits" },
    { call: "group", schema: bundle.traits.group, key: "traits" },
  ];

  // 1. Systematic: every variant of every node of every body, alone.
  for (const root of roots) {
    for (const node of schemaNodes(root.schema)) {
      for (const variant of nodeVariants(node, rng)) {
        const msg = baseMessage(bundle, rng, root.call, root.event, true);
        if (!msg.has(root.key)) msg.push(root.key, validValue(root.schema, rng, true));
        const wrapped = { type: "object", properties: { [root.key]: { ...root.schema, optional: true } } };
        const fault = applyVariant(msg, wrapped, [root.key, ...node.path], variant, rng);
        if (fault === null) continue;
        emit(msg, metaOf("systematic", root.call, root.event, [...variant.cats, `at:${node.schema.type}`], fault ? 1 : 0));
      }
    }
  }
  // 2. Systematic: every variant of every envelope field, per call type.
  for (const call of CALLS) {
    const env = envelopeSchema(call);
    for (const node of schemaNodes(env).filter((n) => n.path.length === 1)) {
      for (const variant of nodeVariants(node, rng)) {
        const event = call === "track" ? rng.pick([...events, "Button Clicked"]) : undefined;
        const msg = baseMessage(bundle, rng, call, event, false);
        const fault = applyVariant(msg, env, node.path, variant, rng);
        if (fault === null) continue;
        emit(msg, metaOf("systematic", call, event, [...variant.cats, `envelope:${node.path[0]}`], fault ? 1 : 0));
      }
    }
  }
  // 3. Message-level envelope cases.
  for (const sp of envelopeSpecials(bundle, rng)) {
    const event = sp.call === "track" ? (sp.event ?? rng.pick([...events, "Button Clicked"])) : undefined;
    const msg = baseMessage(bundle, rng, sp.call, event, rng.chance(0.5));
    sp.fn(msg);
    const parsed = JSON.parse(serialize(msg));
    emit(msg, metaOf("envelope", sp.call, event, sp.cats, intentOf(parsed, bundle) ? 0 : 1));
  }
  // 4. Raw lines: not objects, not JSON, not UTF-8, nesting limits.
  for (const sp of specialLines(bundle, rng)) {
    const bytes = sp.bytes ?? Buffer.from(sp.text, "utf8");
    out.push({ bytes, meta: { kind: "special", cats: sp.cats, faults: sp.faults, single: sp.faults === 1, intent: sp.intent } });
  }
  // 5. Random: valid messages, and 1 to 4 faults anywhere.
  const nodeCache = new Map();
  const nodesOf = (schema) => {
    if (!nodeCache.has(schema)) nodeCache.set(schema, schemaNodes(schema));
    return nodeCache.get(schema);
  };
  const variantCacheByNode = new Map();
  const variantsOf = (node) => {
    if (!variantCacheByNode.has(node)) variantCacheByNode.set(node, nodeVariants(node, rng));
    return variantCacheByNode.get(node);
  };
  while (out.length < count) {
    const call = rng.weighted([
      [50, "track"],
      [15, "identify"],
      [10, "group"],
      [6, "page"],
      [5, "screen"],
      [6, "alias"],
    ]);
    const event = call === "track" ? (rng.chance(0.88) && events.length ? rng.pick(events) : rng.pick(UNDECLARED.slice(0, 4))) : undefined;
    const msg = baseMessage(bundle, rng, call, event, rng.chance(0.4));
    const [body, key] = bodyOf(call, event, bundle);
    const env = envelopeSchema(call);
    const k = rng.weighted([
      [30, 0],
      [30, 1],
      [20, 2],
      [10, 3],
      [10, 4],
    ]);
    const cats = [];
    let faults = 0;
    const touched = [];
    for (let n = 0; n < k * 3 && faults < k; n++) {
      // Body nodes most of the time, envelope fields otherwise.
      let path;
      let rootSchema;
      let node;
      if (body && rng.chance(0.75)) {
        node = rng.pick(nodesOf(body));
        path = [key, ...node.path];
        rootSchema = { type: "object", properties: { [key]: { ...body, optional: true } } };
      } else {
        node = rng.pick(nodesOf(env).filter((x) => x.path.length === 1));
        path = node.path;
        rootSchema = env;
      }
      const p = JSON.stringify(path);
      if (touched.some((t) => p.startsWith(t.slice(0, -1)) || t.startsWith(p.slice(0, -1)))) continue;
      const variants = variantsOf(node);
      const variant = rng.pick(variants);
      const fault = applyVariant(msg, rootSchema, path, variant, rng);
      if (fault === null) continue;
      touched.push(p);
      cats.push(...variant.cats);
      if (fault) faults++;
    }
    emit(msg, metaOf("random", call, event, cats, faults));
  }
  return out;
}

/** Shuffles the members of every object that has no duplicate keys. */
function shuffleDeep(v, rng) {
  if (Array.isArray(v)) v.forEach((x) => shuffleDeep(x, rng));
  else if (v instanceof Obj) {
    if (!v.hasDuplicates()) rng.shuffle(v.m);
    v.m.forEach(([, x]) => shuffleDeep(x, rng));
  }
}

// ------------------------------------------------------------------ CLI

function main() {
  ensureStableCanParse();
  const args = Object.fromEntries(
    process.argv
      .slice(2)
      .join(" ")
      .split(/\s*--/)
      .filter(Boolean)
      .map((a) => {
        const [k, ...v] = a.split(/\s+/);
        return [k, v.join(" ")];
      }),
  );
  if (!args.bundle || !args.out) {
    console.error("usage: node gen.mjs --bundle BUNDLE.json --out MESSAGES.ndjson [--cases CASES.ndjson] [--count N] [--seed S]");
    process.exit(2);
  }
  const bundle = JSON.parse(readFileSync(args.bundle, "utf8"));
  const messages = generate(bundle, { count: Number(args.count ?? 12000), seed: args.seed ?? "1" });
  const cases = args.cases ?? args.out.replace(/\.ndjson$/, "") + ".cases.ndjson";
  mkdirSync(dirname(args.out), { recursive: true });
  mkdirSync(dirname(cases), { recursive: true });
  const nl = Buffer.from("\n");
  writeFileSync(args.out, Buffer.concat(messages.flatMap((m) => [m.bytes, nl])));
  writeFileSync(cases, messages.map((m, index) => JSON.stringify({ index, ...m.meta })).join("\n") + "\n");
  const faulty = messages.filter((m) => m.meta.faults > 0).length;
  console.log(
    `gen: ${messages.length} messages (${messages.length - faulty} without faults, ${messages.filter((m) => m.meta.single).length} single-fault) -> ${args.out}`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) main();
