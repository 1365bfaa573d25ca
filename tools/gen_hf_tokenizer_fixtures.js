#!/usr/bin/env node
// Writes the fixtures that tests/test_hf_tokenizer.c checks patchscope.h's tokenizer.json
// support against. The oracle is Hugging Face's own tokenizers library (npm
// `tokenizers@0.23.2`, the Node binding of the Rust crate transformers runs, binary inside):
//     npm i -E --prefix /tmp/tok tokenizers@0.23.2
//     NODE_PATH=/tmp/tok/node_modules node tools/gen_hf_tokenizer_fixtures.js NAME tokenizer.json
// Output: tests/data/hf_tokenizers/NAME.json
//   {"tokenizers": version, "file": path, "cases": [{"text", "ids", "special", "bos", "decoded"}]}
//   ids      encode(text, add_special_tokens=false) with the special added tokens taken out of
//            the file, so their strings are ordinary text (patchscope.h's ps_encode flags 0)
//   special  the same with the file as it is: special-token strings become their tokens
//            (PS_ENCODE_SPECIAL)
//   bos      encode(text) with the file's post-processor (add_special_tokens=true)
//   decoded  decode(special, skip_special_tokens=false)
// Texts are valid Unicode (the library takes strings); everything random comes from a
// seeded generator, so reruns give the same file.
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("tokenizers");

const [name, file] = process.argv.slice(2);
if (!name || !file) { console.error("usage: gen_hf_tokenizer_fixtures.js NAME tokenizer.json"); process.exit(2); }
const json = JSON.parse(fs.readFileSync(file, "utf8"));
const full = Tokenizer.fromString(JSON.stringify(json));
const plainJson = Object.assign({}, json, { added_tokens: json.added_tokens.filter((t) => !t.special) });
const plain = Tokenizer.fromString(JSON.stringify(plainJson));
const version = JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve("tokenizers")), "package.json"), "utf8")).version;

const rand = require("./seeded_random.js")(0x70c5eed);
const pick = (a) => a[Math.floor(rand() * a.length)];
const cp = (...xs) => String.fromCodePoint(...xs);

const fixed = [
  "", " ", "  ", "\n", "\r\n", "\t", "a", " a", "a ", "  leading", "trailing  ", "Hello world",
  "The capital of Poland is", "The CEO of Apple is", "Syria: Damascus\nPoland:", "x",
  "don't DON'T Don'T it's IT'S we're WE'RE I've I'VE I'm I'M you'll YOU'LL he'd HE'D",
  "1 12 123 1234 12345 123456 1234567 3.14159 -42 1,000,000 0x1F 2026-12-03",
  "café naïve résumé Ångström e\u0301 a\u0308 n\u0303", "東京は日本の首都です。", "北京欢迎你",
  "مرحبا بالعالم", "नमस्ते दुनिया", "Привет, мир!", "Γειά σου Κόσμε", "שלום עולם",
  "👍 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️", "\u00a0non\u00a0breaking\u2003em\u3000ideographic\u200bzero",
  "int main(void) {\n    return 0;\n}\n", "def f(x):\n\treturn x ** 2  # square\n",
  "<s>", "</s>", "<unk>", "<s>Hello</s>", "a<s>b", " <s> ", "<|endoftext|>", "<|begin_of_text|>Hi",
  "<|im_start|>user\nhi<|im_end|>", "<bos>x<eos>", "<start_of_turn>user", "\u2581already\u2581metaspace",
  "<0x41>", "ab\u0000cd", "\u0007bell", "tab\there", "many     spaces", "\n\n\n", " \n \n ",
  "ALLCAPS words MixedCase camelCase snake_case kebab-case", "!!!???...,,,;;;", "'s 's 'S 'ſ 'ﬆ",
];
const fragments = [
  "the", " the", "The", " of", " and", " is", " capital", " city", " Poland", " Warsaw", "CEO",
  " Apple", " Tim", " Cook", ".", ",", "!", "?", ";", ":", "'", "\"", "(", ")", "[", "]", "{", "}",
  " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", "0", "7", "42", "123", "2024", "99999", "3.5",
  "é", "ü", "ñ", "ß", "ø", "Ж", "ж", "λ", "中", "文", "日本", "한국어", "ع", "ह", "ि", "\u0301", "\u0308",
  "😀", "👍🏿", "🇵🇱", "‍", "\u00a0", "\u2009", "\u3000", "'s", "'T", "'re", "'LL", "n't",
  "<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_end|>", "<eos>", "▁", "#", "$", "%", "&", "*", "+", "-", "=",
  "_", "/", "\\", "|", "~", "`", "^", "@", "http://x.io/a?b=c", "foo_bar", "i++", "->", "==", "//",
];
const texts = [];
const seen = new Set();
const add = (t) => { if (!seen.has(t)) { seen.add(t); texts.push(t); } };
fixed.forEach(add);
for (let c = 0x20; c < 0x2500; c += 7) add("a" + cp(c) + "b " + cp(c) + cp(c) + " 1" + cp(c));
for (let n = 0; n < 1400; n++) {
  let s = "";
  const k = 1 + Math.floor(rand() * 24);
  for (let i = 0; i < k; i++) s += pick(fragments);
  add(s);
}
for (let n = 0; n < 200; n++) { // random code points from assigned-ish blocks
  let s = "";
  for (let i = 0; i < 12; i++) {
    const block = pick([[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x4ff], [0x600, 0x6ff], [0x900, 0x97f],
                        [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1f300, 0x1f64f]]);
    s += cp(block[0] + Math.floor(rand() * (block[1] - block[0] + 1)));
  }
  add(s);
}

(async () => {
  const cases = [];
  for (const text of texts) {
    const ids = (await plain.encode(text, null, { addSpecialTokens: false })).getIds();
    const special = (await full.encode(text, null, { addSpecialTokens: false })).getIds();
    const bos = (await full.encode(text, null, { addSpecialTokens: true })).getIds();
    const decoded = await full.decode(special, false);
    cases.push({ text, ids, special, bos, decoded });
  }
  const out = path.join("tests/data/hf_tokenizers", name + ".json");
  fs.writeFileSync(out, JSON.stringify({ tokenizers: version, file, cases }) + "\n");
  console.error(`${out}: ${cases.length} cases`);
})();
