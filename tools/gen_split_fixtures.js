#!/usr/bin/env node
// Writes tests/data/hf_tokenizers/split_string.json: Hugging Face tokenizers' ids (npm
// tokenizers@0.23.2) for Mistral's tokenizer.json (weights/tiny-llama) with its null
// pre_tokenizer replaced by a Split on the string "\u2581" (which its normalizer puts for every
// space), one case per behavior Isolated, MergedWithPrevious, MergedWithNext and Contiguous,
// on 300 seeded texts each (ids without special tokens). tests/test_hf_tokenizer.c makes the
// same replacement and compares.
//     NODE_PATH=/tmp/tok/node_modules node tools/gen_split_fixtures.js
"use strict";
const fs = require("fs");
const { Tokenizer } = require("tokenizers");
const rand = require("./seeded_random.js")(0x5117);
const base = fs.readFileSync("weights/tiny-llama/tokenizer.json", "utf8");
const behaviors = ["Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"];
const words = ["the", "capital", "of", "Poland", "is", "Warsaw", ".", ",", "  ", "   ", " ", "\n", "a", "b", "ab", "'s",
               "don't", "12", "3.5", "café", "日本", "▁", "▁▁", "x▁y", "Hello", "world", "!"];
const texts = ["", " ", "  ", "a", " a", "a ", "a  b", "▁", "▁▁a▁", "Hello world", "The capital of Poland is Warsaw."];
while (texts.length < 300) {
  let s = "";
  const k = 1 + Math.floor(rand() * 12);
  for (let i = 0; i < k; i++) s += (rand() < 0.5 ? " " : "") + words[Math.floor(rand() * words.length)];
  texts.push(s);
}
(async () => {
  const out = { tokenizers: "0.23.2", texts, behaviors: {} };
  for (const b of behaviors) {
    const json = base.replace('"pre_tokenizer": null', `"pre_tokenizer": {"type": "Split", "pattern": {"String": "\u2581"}, "behavior": "${b}", "invert": false}`);
    if (json === base) throw new Error("no null pre_tokenizer to replace");
    const tok = Tokenizer.fromString(json);
    const ids = [];
    for (const t of texts) ids.push(Array.from((await tok.encode(t, null, { addSpecialTokens: false })).getIds()));
    out.behaviors[b] = ids;
  }
  fs.writeFileSync("tests/data/hf_tokenizers/split_string.json", JSON.stringify(out) + "\n");
  console.log("tests/data/hf_tokenizers/split_string.json:", texts.length, "texts x", behaviors.length, "behaviors");
})();
