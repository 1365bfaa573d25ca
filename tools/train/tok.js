// Tokenizers for the training tools: ids exactly as each model's own tokenizer gives them.
//
//   node tok.js TOKENIZER corpus IN.txt OUT.u16   documents separated by <|endoftext|> -> uint16 ids
//   node tok.js TOKENIZER encode                  stdin: JSON list of strings -> stdout: JSON id lists
//
// TOKENIZER is "gpt2" (tiktoken's encoding "gpt2") or the path of a Hugging Face tokenizer.json, run by
// Hugging Face's own library (npm `tokenizers`). Both modes give what `tokenizer(text)` gives in
// transformers: GPT-2 adds nothing; a tokenizer.json adds what its post-processor adds (Llama's BOS).
// In a corpus every document is encoded that way, so a Llama document starts with BOS; GPT-2's
// documents are closed by <|endoftext|> instead. All ids of both are < 65536, so uint16 holds them.
"use strict";
const fs = require("fs");

const EOT = "<|endoftext|>";
const [tokName, mode, inPath, outPath] = process.argv.slice(2);

async function loadTokenizer(name) {
  if (name === "gpt2") {
    const enc = require("tiktoken").get_encoding("gpt2");
    return { encodeAll: async (texts) => texts.map((s) => Array.from(enc.encode_ordinary(s))), close: [50256] };
  }
  const { Tokenizer } = require("tokenizers");
  const tok = Tokenizer.fromFile(name);
  return {
    encodeAll: async (texts) =>
      (await tok.encodeBatch(texts, { addSpecialTokens: true })).map((e) => Array.from(e.getIds())),
    close: [],
  };
}

async function main() {
  const tok = await loadTokenizer(tokName);
  if (mode === "corpus") {
    const docs = fs.readFileSync(inPath, "utf-8").split(EOT).filter((d) => d.length > 0);
    const out = fs.openSync(outPath, "w");
    let n = 0;
    for (let i = 0; i < docs.length; i += 4096) { // batches keep memory flat and let the Rust side thread
      for (const ids of await tok.encodeAll(docs.slice(i, i + 4096))) {
        const buf = Uint16Array.from(ids.concat(tok.close));
        fs.writeSync(out, Buffer.from(buf.buffer));
        n += buf.length;
      }
    }
    fs.closeSync(out);
    console.log(`${n} tokens`);
  } else if (mode === "encode") {
    process.stdout.write(JSON.stringify(await tok.encodeAll(JSON.parse(fs.readFileSync(0, "utf-8")))));
  } else {
    console.error("usage: node tok.js gpt2|TOKENIZER.json corpus IN OUT | encode");
    process.exit(2);
  }
}

main();
