#!/usr/bin/env node
// Checks the Unicode tables of patchscope.h against tiktoken's, for every code point.
//     NODE_PATH=/path/to/node_modules node tools/check_unicode_vs_tiktoken.js [HEADER [CLI]]
// HEADER (default patchscope.h) is read for its runs[] table, the generated section at its end.
// 1. Classes: tiktoken's regex engine (the one its "gpt2" pattern runs on) sorts each code
//    point into \p{L}, \p{N}, \s or none of them, seen through a throwaway encoding whose
//    pattern glues a marker to the next character only for one class, and whose vocabulary
//    then merges the marker with that character's first byte.
// 2. Token ids, if CLI (a patchscope binary built from HEADER) is given: every code point in
//    several contexts, encoded by the CLI and by tiktoken's "gpt2", must give the same ids.
// Surrogates are skipped: they cannot be encoded. Exits 1 if anything differs.
"use strict";
const fs = require("fs");
const { execFileSync } = require("child_process");
const { Tiktoken, get_encoding } = require("tiktoken");

const [headerPath = "patchscope.h", cliPath] = process.argv.slice(2);
const NAMES = ["other", "letter", "number", "space"]; // the generator's class numbers
const codePoints = [];
for (let c = 0; c <= 0x10ffff; c++) if (c < 0xd800 || c > 0xdfff) codePoints.push(c);

// --- the header's class of every code point ------------------------------------------------
const header = fs.readFileSync(headerPath, "utf8");
const table = header.match(/static const unsigned runs\[\d+\] = \{([^}]*)\}/);
if (!table) throw new Error(headerPath + ": no runs[] table");
const runs = table[1].split(",").map((s) => s.trim()).filter((s) => s).map(Number);
const ours = new Uint8Array(0x110000);
runs.forEach((r, k) => ours.fill(r & 3, r >>> 2, k + 1 < runs.length ? runs[k + 1] >>> 2 : 0x110000));

// --- 1. tiktoken's class of every code point -----------------------------------------------
// Ranks: byte b is b; marker m followed by byte b is 256 * (m + 1) + b. A probe "a" + x + "|"
// starts with a merged token exactly when x is a letter; "b" probes numbers, "c" white space.
const markers = ["a", "b", "c"];
const tokens = [];
for (const m of [null, ...markers])
  for (let b = 0; b < 256; b++) tokens.push(Buffer.from(m ? [m.charCodeAt(0), b] : [b]).toString("base64"));
const probe = new Tiktoken("! 0 " + tokens.join(" "), {}, "a\\p{L}|b\\p{N}|c\\s|[\\s\\S]");
const theirs = new Uint8Array(0x110000);
for (let i = 0; i < codePoints.length; i += 4096) {
  const batch = codePoints.slice(i, i + 4096);
  let text = "";
  for (const c of batch) for (const m of markers) text += m + String.fromCodePoint(c) + "|";
  const ids = probe.encode_ordinary(text);
  let at = 0;
  for (const c of batch) {
    const len = Buffer.byteLength(String.fromCodePoint(c));
    markers.forEach((m, k) => {
      if (ids[at] >= 256) { // marker and first byte merged: c is in class k + 1
        if (theirs[c]) throw new Error("U+" + c.toString(16) + " is in two classes");
        theirs[c] = k + 1;
        at += len + 1;
      } else at += len + 2;
      if (ids[at - 1] !== 0x7c) throw new Error("lost track of the probe ids at U+" + c.toString(16));
    });
  }
  if (at !== ids.length) throw new Error("unread probe ids");
}
probe.free();

const hex = (c) => c.toString(16).toUpperCase().padStart(4, "0");
let nDiff = 0, shown = 0;
for (let k = 0; k < codePoints.length; k++) {
  const c = codePoints[k];
  if (ours[c] === theirs[c]) continue;
  nDiff++;
  let e = k; // report runs of code points that differ the same way
  while (e + 1 < codePoints.length && codePoints[e + 1] === codePoints[e] + 1 &&
    ours[codePoints[e + 1]] === ours[c] && theirs[codePoints[e + 1]] === theirs[c]) e++;
  if (shown++ < 40)
    console.log("differs: " + hex(c) + (e > k ? ".." + hex(codePoints[e]) : "") + " is " + NAMES[ours[c]] +
      " in " + headerPath + ", " + NAMES[theirs[c]] + " in tiktoken");
  nDiff += e - k;
  k = e;
}
const counts = NAMES.map((n, k) => codePoints.filter((c) => theirs[c] === k).length + " " + n);
console.log("classes: " + codePoints.length + " code points (" + counts.join(", ") + "), " + nDiff + " differ");

// --- 2. token ids through the CLI ----------------------------------------------------------
let nBad = 0;
if (cliPath) {
  const enc = get_encoding("gpt2");
  const contexts = (x) => "a" + x + "b 1" + x + "2 !" + x + "? " + x + "'s " + x + x + " " + x + "\n";
  let nTexts = 0;
  for (let i = 0; i < codePoints.length; i += 16384) {
    const chunk = codePoints.slice(i, i + 16384);
    const text = chunk.map((c) => contexts(String.fromCodePoint(c))).join("");
    const want = Array.from(enc.encode_ordinary(text)).join(",");
    const got = execFileSync(cliPath, ["tokenize", "-"], { input: text, maxBuffer: 1 << 28 }).toString().trim();
    nTexts++;
    if (got !== want) {
      nBad++;
      console.log("ids differ on the text of " + hex(chunk[0]) + ".." + hex(chunk[chunk.length - 1]));
    }
  }
  enc.free();
  console.log("ids: " + nTexts + " texts of every code point in 7 contexts, " + nBad + " differ from tiktoken");
}
process.exit(nDiff || nBad ? 1 : 0);
