// JSON values whose text is controlled exactly: objects keep their members in
// order and may repeat a key, and any token (a number like `1e400` or `-0`, a
// string with `\u` escapes or a lone surrogate) can be written verbatim.
//
// Used by gen.mjs to write messages and by differential.mjs to minimise a
// disagreement without losing the textual feature that triggers it.

/** A token written verbatim (a number, a string with its quotes, or a whole value). */
export class Raw {
  constructor(text) {
    this.text = text;
  }
}

/** An object as an ordered list of members; keys are strings or Raw string tokens. */
export class Obj {
  constructor(members = []) {
    this.m = members;
  }
  static of(plain) {
    return new Obj(Object.entries(plain));
  }
  /** Index of the member JSON.parse keeps for `key` (the last one), or -1. */
  lastIndex(key) {
    for (let i = this.m.length - 1; i >= 0; i--) if (keyText(this.m[i][0]) === key) return i;
    return -1;
  }
  has(key) {
    return this.lastIndex(key) >= 0;
  }
  get(key) {
    const i = this.lastIndex(key);
    return i < 0 ? undefined : this.m[i][1];
  }
  /** Replaces the value JSON.parse keeps, or appends the key. */
  set(key, value) {
    const i = this.lastIndex(key);
    if (i < 0) this.m.push([key, value]);
    else this.m[i][1] = value;
    return this;
  }
  /** Removes every member with this key. */
  del(key) {
    this.m = this.m.filter(([k]) => keyText(k) !== key);
    return this;
  }
  /** Appends a member even if the key is already there (a duplicate key). */
  push(key, value) {
    this.m.push([key, value]);
    return this;
  }
  keys() {
    return this.m.map(([k]) => keyText(k));
  }
  hasDuplicates() {
    const ks = this.keys();
    return new Set(ks).size !== ks.length;
  }
}

/** The decoded text of a member key. */
export function keyText(k) {
  return k instanceof Raw ? JSON.parse(k.text) : k;
}

/** Plain JavaScript data (objects, arrays, strings, finite numbers) as Obj/array trees. */
export function fromPlain(v) {
  if (Array.isArray(v)) return v.map(fromPlain);
  if (v !== null && typeof v === "object" && !(v instanceof Raw) && !(v instanceof Obj)) {
    return new Obj(Object.entries(v).map(([k, x]) => [k, fromPlain(x)]));
  }
  return v;
}

/** Deep copy of a tree (Raw tokens are immutable and shared). */
export function clone(v) {
  if (Array.isArray(v)) return v.map(clone);
  if (v instanceof Obj) return new Obj(v.m.map(([k, x]) => [k, clone(x)]));
  return v;
}

/** The JSON text of a tree. Iterative, so very deep values are fine. */
export function serialize(root) {
  const out = [];
  // A work list of values still to write and literal pieces of text.
  const work = [{ v: root }];
  while (work.length) {
    const item = work.pop();
    if ("s" in item) {
      out.push(item.s);
      continue;
    }
    const v = item.v;
    if (v instanceof Raw) out.push(v.text);
    else if (v === null) out.push("null");
    else if (typeof v === "boolean") out.push(v ? "true" : "false");
    else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new Error(`non-finite number ${v}: use Raw`);
      out.push(Object.is(v, -0) ? "-0" : JSON.stringify(v));
    } else if (typeof v === "string") out.push(JSON.stringify(v));
    else if (Array.isArray(v)) {
      const seq = [{ s: "[" }];
      v.forEach((x, i) => {
        if (i) seq.push({ s: "," });
        seq.push({ v: x });
      });
      seq.push({ s: "]" });
      for (let i = seq.length - 1; i >= 0; i--) work.push(seq[i]);
    } else if (v instanceof Obj) {
      const seq = [{ s: "{" }];
      v.m.forEach(([k, x], i) => {
        if (i) seq.push({ s: "," });
        seq.push({ s: (k instanceof Raw ? k.text : JSON.stringify(k)) + ":" });
        seq.push({ v: x });
      });
      seq.push({ s: "}" });
      for (let i = seq.length - 1; i >= 0; i--) work.push(seq[i]);
    } else {
      throw new Error(`cannot serialize ${typeof v}`);
    }
  }
  return out.join("");
}

/**
 * Parses JSON text into a tree that serializes back to the same tokens:
 * numbers and escaped strings stay Raw, keys keep their spelling and
 * duplicates. Throws on anything JSON.parse would reject. Recursive: meant
 * for small lines (the minimiser skips deep ones).
 */
export function parseRaw(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (why) => {
    throw new SyntaxError(`${why} at ${i}`);
  };
  const str = () => {
    const start = i;
    if (text[i] !== '"') fail("expected string");
    i++;
    let escaped = false;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail("control character");
      if (text[i] === "\\") {
        escaped = true;
        i += text[i + 1] === "u" ? 6 : 2;
      } else i++;
    }
    if (text[i] !== '"') fail("unterminated string");
    i++;
    const tok = text.slice(start, i);
    JSON.parse(tok); // validates escapes
    return escaped ? new Raw(tok) : JSON.parse(tok);
  };
  const value = (depth) => {
    if (depth > 2000) fail("too deep");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const o = new Obj();
      ws();
      if (text[i] === "}") {
        i++;
        return o;
      }
      for (;;) {
        ws();
        const k = str();
        ws();
        if (text[i] !== ":") fail("expected :");
        i++;
        const v = value(depth + 1);
        o.m.push([k, v]);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return o;
        }
        fail("expected , or }");
      }
    }
    if (c === "[") {
      i++;
      const a = [];
      ws();
      if (text[i] === "]") {
        i++;
        return a;
      }
      for (;;) {
        a.push(value(depth + 1));
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return a;
        }
        fail("expected , or ]");
      }
    }
    if (c === '"') return str();
    for (const [w, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ]) {
      if (text.startsWith(w, i)) {
        i += w.length;
        return v;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) fail("expected a value");
    i += m[0].length;
    return new Raw(m[0]);
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail("trailing data");
  return v;
}
