// GPT-2 tokenizer for the training tools (tiktoken, encoding "gpt2": exactly GPT-2's ids).
//
//   node tok.js corpus IN.txt OUT.u16   documents separated by <|endoftext|> -> little-endian uint16 ids
//   node tok.js encode                  stdin: JSON list of strings -> stdout: JSON list of id lists
//
// All GPT-2 ids are < 65536, so uint16 holds them.
"use strict";
const fs = require("fs");
const { get_encoding } = require("tiktoken");

const enc = get_encoding("gpt2");
const EOT = "<|endoftext|>";
const [mode, inPath, outPath] = process.argv.slice(2);

function stdinJSON() {
  return JSON.parse(fs.readFileSync(0, "utf-8"));
}

if (mode === "corpus") {
  const docs = fs.readFileSync(inPath, "utf-8").split(EOT);
  const out = fs.openSync(outPath, "w");
  let n = 0;
  for (const d of docs) {
    if (d.length === 0) continue;
    const ids = enc.encode_ordinary(d);
    const buf = new Uint16Array(ids.length + 1);
    buf.set(ids);
    buf[ids.length] = 50256; // <|endoftext|> closes every document
    fs.writeSync(out, Buffer.from(buf.buffer));
    n += buf.length;
  }
  fs.closeSync(out);
  console.log(`${n} tokens`);
} else if (mode === "encode") {
  const res = stdinJSON().map((s) => Array.from(enc.encode_ordinary(s)));
  process.stdout.write(JSON.stringify(res));
} else {
  console.error("usage: node tok.js corpus IN OUT | encode");
  process.exit(2);
}
