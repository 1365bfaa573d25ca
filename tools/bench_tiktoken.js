#!/usr/bin/env node
// tiktoken's ("gpt2", npm package `tiktoken`) single-thread encode throughput on the same
// texts as build/bench, for side-by-side numbers. Run from the repo root:
//     NODE_PATH=/path/to/node_modules node tools/bench_tiktoken.js [--json]
// The texts are built exactly as tools/bench.c builds them: the fixture texts of
// tests/data/tokenizer_cases.json but the long-piece stress ones, joined by "\n" ("mixed";
// "ascii" keeps the all-ASCII texts), repeated to at least 4 MiB. Times are CPU seconds of
// the process, best of 5 runs, and include tiktoken's copy of the string into its
// WebAssembly memory (part of its cost).
"use strict";
const fs = require("fs");
const { get_encoding } = require("tiktoken");

const MIN = 4 << 20;
const cases = JSON.parse(fs.readFileSync("tests/data/tokenizer_cases.json", "utf8")).cases;
// the long-piece stress texts (a run of 256 bytes without " " or "\n") are left out, as in bench.c
const longRun = (t) => /[^ \n]{256}/.test(Buffer.from(t, "utf8").toString("latin1")); // one char per byte
function build(texts) {
  texts = texts.filter((t) => !longRun(t));
  const one = Buffer.from(texts.join("\n"), "utf8");
  const parts = [one];
  let size = one.length;
  while (size < MIN) {
    parts.push(Buffer.from("\n"), one);
    size += 1 + one.length;
  }
  return Buffer.concat(parts).toString("utf8");
}
const mixed = build(cases.map((c) => c.text));
const ascii = build(cases.map((c) => c.text).filter((t) => /^[\x00-\x7f]*$/.test(t)));

const enc = get_encoding("gpt2");
function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
function mbPerS(text) {
  const bytes = Buffer.byteLength(text, "utf8");
  let best = 0, n = 0;
  for (let run = 0; run < 5; run++) {
    const t0 = cpuSeconds();
    n = enc.encode_ordinary(text).length;
    best = Math.max(best, bytes / (cpuSeconds() - t0) / 1e6);
  }
  return [best, bytes, n];
}
const [asciiMbS] = mbPerS(ascii);
const [mixedMbS, bytes, tokens] = mbPerS(mixed);
enc.free();

const version = JSON.parse(fs.readFileSync(require.resolve("tiktoken").replace(/[^/\\]*$/, "package.json"), "utf8")).version;
if (process.argv[2] === "--json") {
  console.log(JSON.stringify({ tiktoken_mb_s: +mixedMbS.toPrecision(6), tiktoken_ascii_mb_s: +asciiMbS.toPrecision(6),
    tiktoken_text_bytes: bytes, tiktoken_text_tokens: tokens }));
} else {
  const row = (label, value, unit) => console.log(label.padEnd(36) + " " + String(+value.toPrecision(6)).padStart(14) + "  " + unit);
  row("tiktoken " + version + " encode, ASCII text", asciiMbS, "MB/s");
  row("tiktoken " + version + " encode, mixed text", mixedMbS, "MB/s");
  row("  mixed text size", bytes, "bytes");
  row("  mixed text tokens", tokens, "ids");
}
