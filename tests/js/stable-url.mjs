// Zod's `z.url()` is `URL.canParse`. On Node 20 (seen on 20.20.2), once V8
// optimises `URL.canParse` it takes a fast-API path that rejects one-byte
// (Latin-1) strings with non-ASCII characters: `URL.canParse("http://ß.com")`
// is true in a fresh process and false after a few thousand calls. Zod's
// answer would then depend on how warm the process is.
//
// `ensureStableCanParse()` probes for that and, if the bug is there, re-runs
// the current script with V8's `--no-turbo-fast-api-calls` (the slow path is
// correct) and exits with its status. Call it before anything else.

import { spawnSync } from "node:child_process";

const FLAG = "--no-turbo-fast-api-calls";

/** Whether URL.canParse still accepts a Latin-1 URL after being optimised. */
export function canParseIsStable() {
  for (let i = 0; i < 100000; i++) URL.canParse("http://example.com/" + (i % 7));
  return URL.canParse("http://\u00e9.com") && URL.canParse("http://\u00df.com");
}

/** Re-executes this script with the flag when URL.canParse is unstable; returns when it is stable. */
export function ensureStableCanParse() {
  if (process.execArgv.includes(FLAG)) return;
  if (canParseIsStable()) return;
  const r = spawnSync(process.execPath, [...process.execArgv, FLAG, ...process.argv.slice(1)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}

/** A note for reports: whether the flag was needed. */
export const stabilised = () => process.execArgv.includes(FLAG);
