#!/usr/bin/env node
// Writes the tokenizer fixtures that tests/test_tokenizer.c checks patchscope.h against.
// The oracle is tiktoken's "gpt2" encoding (npm package `tiktoken`), which shares no code
// with the header. Run from the repo root with tiktoken installed anywhere node finds it:
//     NODE_PATH=/path/to/node_modules node tools/gen_tokenizer_fixtures.js
// It also reads the Unicode Character Database's text files (Debian's unicode-data 15.0.0,
// or UCD_DIR) to pick the code points at every class boundary; the code points that 15.1
// and 16.0 added are listed here, so another version would change only those texts.
// Output (committed, so CI needs no node):
//   tests/data/tokenizer_cases.json  {"tiktoken": version, "cases": [{"text", "ids"[, "special": 1]}]}
//       ids are tiktoken's encode_ordinary(text), or encode(text, "all") for "special" cases.
//   tests/data/gpt2_token_bytes.bin  for id 0..50256: one length byte, then the token's bytes
//       as tiktoken's decode_single_token_bytes gives them.
// Texts are valid Unicode (tiktoken takes strings); invalid UTF-8 is covered by the C
// test's round trip. Everything random is drawn from a seeded generator, so reruns give
// the same files.
"use strict";
const fs = require("fs");
const path = require("path");
const { get_encoding } = require("tiktoken");

const enc = get_encoding("gpt2");
// the package exports no package.json: find it beside the module's entry point
const tiktokenVersion = JSON.parse(fs.readFileSync(
  path.join(path.dirname(require.resolve("tiktoken")), "package.json"), "utf8")).version;

// --- seeded randomness (mulberry32) ---------------------------------------------------
const rand = require("./seeded_random.js")(0x5eed2024);
const randint = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1)); // inclusive
const pick = (a) => a[Math.floor(rand() * a.length)];
const cp = (...xs) => String.fromCodePoint(...xs);
const range = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, i) => cp(lo + i));

const cases = [];
const seen = new Set();
function add(text, special) {
  const key = (special ? "S" : "O") + text;
  if (seen.has(key)) return;
  seen.add(key);
  cases.push(special ? { text, special: 1 } : { text });
}

// texts of 24 code points each, every one after a letter, a digit, punctuation and a space,
// before "'s" and beside itself
function addInContext(points) {
  for (let i = 0; i < points.length; i += 24) {
    let s = "";
    for (const c of points.slice(i, i + 24)) {
      const x = cp(c);
      s += "a" + x + "b 1" + x + "2 !" + x + "? " + x + "'s " + x + x + "\n";
    }
    add(s);
  }
}

// --- English prose ---------------------------------------------------------------------
const prose = [
  "The old lighthouse keeper climbed the spiral stairs every evening at dusk, counting the steps out of habit: one hundred and twelve, never more, never less.",
  "When the committee finally met on Tuesday, nobody could remember who had proposed the new budget, and the minutes from March were missing.",
  "She didn't think it'd rain, but we'd packed umbrellas anyway; they're light, and you'll never regret carrying one.",
  "In 1969, roughly 650 million people watched the landing; by 2019 the footage had been restored at 4K resolution and 60 frames per second.",
  "\"Are you sure?\" he asked. \"Absolutely,\" she replied -- though her voice wavered -- \"I've checked the numbers twice.\"",
  "Dear Sir or Madam,\n\nI am writing to inquire about the apartment listed at 42 Elm Street (Unit 3B). Is it still available?\n\nKind regards,\nJ. Smith",
  "Photosynthesis converts light energy into chemical energy: carbon dioxide and water become glucose and oxygen, powered by chlorophyll.",
  "The recipe calls for 2 1/2 cups of flour, 3/4 cup of sugar, a pinch of salt, and 1.5 teaspoons of baking powder; bake at 350°F for 25-30 minutes.",
  "Q: What's the difference between a list and a tuple?\nA: Lists are mutable; tuples aren't. That's the short answer.",
  "   Indented lines, trailing spaces,   \nand blank lines:\n\n\n    all of them matter to a tokenizer.   ",
  "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG. the quick brown fox jumps over the lazy dog! The Quick Brown Fox?",
  "E-mail me at first.last@example.com or visit https://example.org/path?query=1&lang=en#section-2 before 5:30 p.m.",
  "Shakespeare-style English: 'Tis but a scratch, quoth he; thou'rt mistaken, 'twas a mortal wound.",
  "I'M NOT SURE THEY'LL COME, BUT IF THEY'RE LATE WE'VE GOT TO START WITHOUT THEM; IT'S FINE, I'D SAY.",
  "Numbers: 0, 7, 42, 123, 1000, 65536, 3.14159, -273.15, 6.022e23, 1,000,000, 0x1F, 0b1010, 1st, 2nd, 3rd, 4th.",
  "Mr. O'Brien's dog -- a border collie named Rex -- won first prize at the county fair's agility contest in '98.",
  "Tab\tseparated\tvalues\tlook\tlike\tthis\nand\twindows\tuses\r\nCRLF\r\nline\r\nendings.",
];
const englishWords = ("the of and to in is was that for it with as his on be at by had are but from " +
  "not have this they which one you were her all she there would their we him been has when who will " +
  "more no if out so said what up its about into than them can only other new some could time these two " +
  "may then do first any my now such like our over man me even most made after also did many before must " +
  "through back years where much your way well down should because each just those people how too little " +
  "state good very make world still own see men work long get here between both life being under never day " +
  "same another know while last might us great old year off come since against go came right used take three " +
  "tokenizer Warsaw Poland CEO capital president Microsoft Einstein photosynthesis quantum algorithm").split(" ");
for (const p of prose) {
  add(p);
  for (const s of p.split(/(?<=[.!?])\s+/)) add(s);
}
for (let i = 0; i < 300; i++) {
  let n = randint(3, 40), s = "";
  for (let k = 0; k < n; k++) {
    let w = pick(englishWords);
    const r = rand();
    if (r < 0.1) w = w.toUpperCase();
    else if (r < 0.25) w = w[0].toUpperCase() + w.slice(1);
    s += (k ? pick([" ", " ", " ", " ", "  ", ", ", "; ", " - ", "\n", "\t", ". "]) : "") + w;
    if (rand() < 0.08) s += pick(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "n't", "'S", "'LL", "\u2019s"]);
  }
  add(s + pick([".", "!", "?", "", "\n", " ", "...", ":"]));
}

// --- source code -------------------------------------------------------------------------
const code = [
  "#include <stdio.h>\n\nint main(int argc, char **argv) {\n    for (int i = 0; i < argc; i++)\n        printf(\"%d: %s\\n\", i, argv[i]);\n    return 0;\n}\n",
  "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\nif __name__ == '__main__':\n    print([fib(k) for k in range(10)])\n",
  "const sum = (xs) => xs.reduce((a, b) => a + b, 0);\nexport async function load(url) {\n  const res = await fetch(url, { headers: { 'Accept': 'application/json' } });\n  if (!res.ok) throw new Error(`HTTP ${res.status}`);\n  return res.json();\n}\n",
  "fn main() {\n    let v: Vec<u32> = (1..=10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n    match v.iter().max() { Some(m) => println!(\"max {m}\"), None => {} }\n}\n",
  "#!/bin/sh\nset -eu\nfor f in *.txt; do\n  [ -f \"$f\" ] || continue\n  wc -l \"$f\" | awk '{print $1}' >> counts.log 2>&1\ndone\n",
  "{\n  \"name\": \"example\",\n  \"version\": \"1.2.3\",\n  \"tags\": [\"a\", \"b\"],\n  \"nested\": {\"x\": null, \"y\": true, \"z\": -0.5e-3}\n}\n",
  "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Test &amp; demo</title></head>\n<body>\n  <p class=\"note\">Hello, <b>world</b>!</p>\n</body>\n</html>\n",
  "SELECT u.id, u.name, COUNT(o.id) AS orders\nFROM users u\nLEFT JOIN orders o ON o.user_id = u.id\nWHERE u.created_at >= '2020-01-01'\nGROUP BY u.id, u.name\nHAVING COUNT(o.id) > 3\nORDER BY orders DESC;\n",
  "all: build/app\n\nbuild/app: src/main.c src/util.c\n\t$(CC) $(CFLAGS) -o $@ $^ -lm\n\n.PHONY: clean\nclean:\n\trm -rf build\n",
  "--- a/file.txt\n+++ b/file.txt\n@@ -1,3 +1,3 @@\n-old line\n+new line\n unchanged\n",
  "id,name,score\n1,Alice,93.5\n2,Bob,88\n3,\"Smith, Jr.\",71.25\n",
  "    if (x != y && (a || !b)) { *p++ = q[i] << 2 | 0xFF; } // bit twiddling\n\t\treturn (void *)0;\n",
  "class Stack<T> {\n  private items: T[] = [];\n  push(item: T): void { this.items.push(item); }\n  pop(): T | undefined { return this.items.pop(); }\n}\n",
  "    \n        \n\t\n  x = 1  \n\n\n\n    y = 2\n",
];
for (const c of code) {
  add(c);
  for (const line of c.split("\n")) if (line) add(line);
}

// --- white space ---------------------------------------------------------------------------
const spaces = [" ", "\t", "\n", "\r", "\r\n", "\u000b", "\u000c", "\u0085", "\u00a0", "\u1680",
  "\u2000", "\u2002", "\u2003", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"];
for (const s of spaces) {
  for (const [a, b] of [["", ""], ["x", ""], ["", "y"], ["x", "y"], ["1", "2"], ["!", "?"], ["'", "s"]]) {
    add(a + s + b);
    add(a + s + s + b);
    add(a + s + s + s + b);
  }
}
for (const s of spaces) for (const t of spaces) add("word" + s + t + "next");
for (const s of spaces) for (const t of spaces) add(s + t + "word" + s);
for (let n = 1; n <= 12; n++) {
  add("a" + " ".repeat(n) + "b");
  add(" ".repeat(n));
  add("end" + " ".repeat(n));
  add("\n".repeat(n) + "x");
  add("x" + "\t".repeat(n));
  add("line" + "\r\n".repeat(n) + "line");
}
for (let i = 0; i < 300; i++) {
  let s = "";
  const n = randint(1, 12);
  for (let k = 0; k < n; k++) {
    if (rand() < 0.5) s += pick(spaces).repeat(randint(1, 4));
    else s += pick(["a", "word", "B", "7", "42", "!", "'s", "'", "é", "東", "😀", ".", "\u0301", "x y"]);
  }
  add(s);
}

// --- contractions --------------------------------------------------------------------------
const contractions = ["s", "t", "re", "ve", "m", "ll", "d"];
function caseVariants(w) {
  const out = [];
  for (let mask = 0; mask < 1 << w.length; mask++)
    out.push([...w].map((c, i) => (mask >> i) & 1 ? c.toUpperCase() : c).join(""));
  return out;
}
for (const c of contractions) {
  for (const v of caseVariants(c)) {
    for (const ctx of ["I'%", "they'%", "THEY'%", "'% ", " '%", "'%", "x '%s", "''%", "1'%", "!'%", "é'%",
      "東'%", "'%'%", "it'%x", "a '%b", "\n'%", "  '%"])
      add(ctx.split("%").join(v));
  }
}
for (const s of ["I'm", "you're", "we've", "she'll", "he'd", "it's", "can't", "don't", "won't", "y'all",
  "I'M", "YOU'RE", "WE'VE", "SHE'LL", "HE'D", "IT'S", "CAN'T", "'s", "'S", "'ll", "'LL", "'Ll", "'lL",
  "rock 'n' roll", "'twas", "'tis", "o'clock", "O'Neil's", "l'amour", "'", "''", "'''", "' s", "'\ns",
  "it\u2019s", "it\u02bcs", "it\uff07s", "'\u0301s", "'sss", "'llama", "'ready", "'vegas", "'dd", "'mm", "'tt"]) {
  add(s);
  add(" " + s);
  add(s + " ");
}

// --- numbers -------------------------------------------------------------------------------
for (let n = 1; n <= 24; n++) {
  let d = "";
  for (let k = 0; k < n; k++) d += String(randint(0, 9));
  add(d);
  add(" " + d);
  add("x" + d + "y");
  add(d + "." + d);
}
const digitSets = [
  range(0x30, 0x39), range(0x660, 0x669), range(0x6f0, 0x6f9), range(0x966, 0x96f), range(0x9e6, 0x9ef),
  range(0xe50, 0xe59), range(0xff10, 0xff19), range(0x1d7ce, 0x1d7ff), range(0x2070, 0x2079),
  range(0x2080, 0x2089), ["\u00b2", "\u00b3", "\u00b9"], range(0x2150, 0x2189), range(0x2460, 0x249b),
  range(0x2776, 0x2793), ["\u00bc", "\u00bd", "\u00be"], range(0x3007, 0x3007), range(0x3021, 0x3029),
  ["\u4e00", "\u4e8c", "\u4e09", "\u5341", "\u767e"], range(0x10107, 0x10133), range(0x1f100, 0x1f10c),
];
for (const set of digitSets) {
  add(set.join(""));
  for (let i = 0; i < 6; i++) {
    const a = pick(set), b = pick(set);
    add(a);
    add(" " + a + b);
    add("abc" + a + b + "def");
    add("12" + a + "34");
    add(a + "'s " + b + "\n");
  }
}

// --- scripts, combining marks, normalization ------------------------------------------------
const phrases = [
  "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002", "\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8\uff0c\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff01",
  "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430?", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
  "\u0627\u0644\u0633\u0651\u064e\u0644\u064e\u0627\u0645\u064f \u0639\u064e\u0644\u064e\u064a\u0652\u0643\u064f\u0645\u0652", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
  "\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0\u05e9\u05b4\u05c1\u05d9\u05ea", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
  "\u0939\u093f\u0928\u094d\u0926\u0940 \u092e\u0947\u0902 \u0967\u0968\u0969 \u0932\u093f\u0916\u093e", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01",
  "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4", "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
  "\u0bb5\u0ba3\u0b95\u0bcd\u0b95\u0bae\u0bcd \u0b89\u0bb2\u0b95\u0bae\u0bcd", "\u09b9\u09cd\u09af\u09be\u09b2\u09cb \u09ac\u09bf\u09b6\u09cd\u09ac",
  "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0", "\u0532\u0561\u0580\u0565\u0582 \u0561\u0577\u056d\u0561\u0580\u0570",
  "\u12a0\u121b\u122d\u129b", "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u", "Zo\u00eb's na\u00efve caf\u00e9 fa\u00e7ade",
  "Stra\u00dfe \u00fcber \u00c4rger \u00d6l", "\u0141\u00f3d\u017a, \u017b\u00f3\u0142w, \u015awi\u0119ty Krzy\u017c",
];
for (const p of phrases) {
  add(p);
  add(" " + p + " ");
  add(p.normalize("NFD"));
  add(p.normalize("NFKC"));
  add("English then " + p + " then 123.");
}
for (const [a, b] of [["\u00e9", "e\u0301"], ["\u00c5", "A\u030a"], ["\u00f1", "n\u0303"], ["\u1ec7", "e\u0323\u0302"],
  ["\u00fc", "u\u0308"], ["\u0107", "c\u0301"], ["\u1e9b\u0323", "\u017f\u0323\u0307"], ["\uac00", "\u1100\u1161"]]) {
  for (const w of ["caf%", "%", " %", "%s", "%'s", "1%", "%1", "%%%", "x%y"]) {
    add(w.split("%").join(a));
    add(w.split("%").join(b));
  }
}
for (const m of range(0x300, 0x36f)) add("a" + m + "b " + m + " x" + m + m + "'s");

// --- emoji, zero-width characters, mathematical letters ----------------------------------------
const emoji = ["\u{1f600}", "\u{1f44d}\u{1f3fd}", "\u{1f468}\u200d\u{1f469}\u200d\u{1f467}\u200d\u{1f466}",
  "\u{1f1f5}\u{1f1f1}", "\u{1f1fa}\u{1f1f8}\u{1f1ef}\u{1f1f5}", "1\ufe0f\u20e3", "#\ufe0f\u20e3", "\u{1f3f3}\ufe0f\u200d\u{1f308}",
  "\u2764\ufe0f", "\u{1f9d1}\u{1f3ff}\u200d\u{1f4bb}", "\u{1f3f4}\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}",
  "\u263a", "\u{1f44b}\u{1f3fb}", "\u{1f62d}\u{1f62d}\u{1f62d}", "\u{1f4a9}"];
for (const e of emoji) {
  for (const w of ["%", " %", "%%", "hi %", "%!", "a%b", "%'s", "1%2", "% %", "\n%\n"]) add(w.split("%").join(e));
}
const invisible = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad", "\u034f",
  "\u180e", "\ufe0f", "\u061c", "\u2061", "\u{e0001}"];
for (const z of invisible) {
  for (const w of ["%", "%word", "wo%rd", "word%", "% word", "word %", "1%2", "%'s", "a% b", " %\n"]) add(w.split("%").join(z));
}
add("\ufeffThe file starts with a byte order mark.");
const math = [...range(0x1d400, 0x1d419), ...range(0x1d44e, 0x1d454), ...range(0x1d538, 0x1d539),
  "\u211d", "\u2115", "\u2124", "\u2202", "\u2211", "\u222b", "\u221e", "\u2248", "\u2260", "\u00b1", "\u00d7", "\u00f7"];
for (let i = 0; i < 60; i++) {
  let s = "";
  for (let k = randint(1, 12); k > 0; k--) s += pick([pick(math), pick(math), " ", "=", "x", "2", "(", ")"]);
  add(s);
}
for (const special of ["\uffff", "\ufffe", "\u{10ffff}", "\u{10fffd}", "\ue000", "\uf8ff", "\u{f0000}", "\ufffd",
  "\u0000", "\u0001", "\u001f", "\u007f", "\u0080", "\u009f"]) {
  add(special);
  add("a" + special + "b " + special + "'s");
}

// --- every Unicode class boundary -----------------------------------------------------------
// The code points on both sides of each run boundary of the classes, read from Unicode 15.0
// (only to choose inputs; tiktoken gives the ids). Code points unassigned there are skipped:
// the next section has those that 16.0, the version of the header and tiktoken, classifies.
{
  const ucd = process.env.UCD_DIR || "/usr/share/unicode";
  const cls = new Uint8Array(0x110000); // 0 unassigned, 1 letter, 2 number, 3 space, 4 other
  cls.fill(4);
  for (const line of fs.readFileSync(path.join(ucd, "extracted/DerivedGeneralCategory.txt"), "utf8").split("\n")) {
    const m = line.match(/^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*(\w+)/);
    if (!m) continue;
    const v = m[3] === "Cn" ? 0 : m[3][0] === "L" ? 1 : m[3][0] === "N" ? 2 : 4;
    cls.fill(v, parseInt(m[1], 16), parseInt(m[2] || m[1], 16) + 1);
  }
  for (const line of fs.readFileSync(path.join(ucd, "PropList.txt"), "utf8").split("\n")) {
    const m = line.match(/^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*White_Space\b/);
    if (m) cls.fill(3, parseInt(m[1], 16), parseInt(m[2] || m[1], 16) + 1);
  }
  const klass = (c) => (cls[c] === 0 ? 4 : cls[c]); // unassigned code points are "other"
  const picks = [];
  for (let c = 1; c < 0x110000; c++) {
    if (klass(c) === klass(c - 1)) continue;
    for (const d of [c - 1, c]) if (cls[d] !== 0 && (d < 0xd800 || d > 0xdfff)) picks.push(d);
  }
  addInContext(picks); // a few hundred texts
}

// --- special token -------------------------------------------------------------------------
for (const s of ["<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", " <|endoftext|> ",
  "text\n<|endoftext|>\nmore", "<|endoftext|", "|endoftext|>", "<|endoftext|>The next document's start.",
  "<|endoftext|>'s", "<|END0FTEXT|>", "<<|endoftext|>>", "<|endof<|endoftext|>text|>"]) {
  add(s);
  if (s.includes("<|endoftext|>")) add(s, 1);
}

// --- random mixtures ---------------------------------------------------------------------
const pools = [
  range(0x20, 0x7e), range(0x61, 0x7a), range(0x30, 0x39), [" ", " ", "  ", "\n", "\t", "\r\n"],
  ["'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL"], range(0xc0, 0x24f).filter((c) => c !== "\u00d7" && c !== "\u00f7"),
  range(0x300, 0x36f), range(0x391, 0x3a9), range(0x3b1, 0x3c9), range(0x410, 0x44f), range(0x5d0, 0x5ea),
  range(0x5b0, 0x5bc), range(0x621, 0x64a), range(0x64b, 0x652), range(0x660, 0x669), range(0x905, 0x939),
  range(0x93e, 0x94d), range(0x966, 0x96f), range(0xe01, 0xe2e), range(0xe31, 0xe3a), range(0xe50, 0xe59),
  range(0xac00, 0xac40), range(0x1100, 0x1112), range(0x4e00, 0x4fff), range(0x3041, 0x3096),
  range(0x30a1, 0x30fa), range(0x3000, 0x3011), range(0x1f600, 0x1f64f), range(0x1f300, 0x1f3fa),
  range(0x1f3fb, 0x1f3ff), ["\u200d", "\ufe0f", "\u20e3"], range(0x1f1e6, 0x1f1ff), spaces, invisible, math,
  range(0x2150, 0x2189), range(0x2070, 0x2079), range(0x2460, 0x2473), range(0xff10, 0xff19),
  range(0xff21, 0xff3a), range(0x2000, 0x206f), emoji, phrases, englishWords.map((w) => " " + w),
  ["<|endoftext|>", "<|", "|>"],
];
function mixture(nChars) {
  let s = "";
  while ([...s].length < nChars) {
    const pool = pick(pools);
    for (let k = randint(1, 8); k > 0; k--) s += pick(pool);
  }
  return s;
}
for (let i = 0; i < 500; i++) add(mixture(randint(1, 40)));
for (let i = 0; i < 120; i++) add(mixture(randint(100, 3000)));
// the regex's corner cases are all in ASCII: a dense alphabet of them
for (let i = 0; i < 600; i++) {
  let s = "";
  for (let k = randint(1, 30); k > 0; k--) s += pick([..." \t\n\r'sStTmMdDlLrReEvVa1.!?-_", "\u00a0", "\u3000", "\u0085", "\u2028", "\u00e9", "\u0301"]);
  add(s);
}

// --- long pieces: thousands of bytes that BPE must merge in one go ---------------------------
{
  const letters = range(0x61, 0x7a), cjk = range(0x4e00, 0x4fff), latin = range(0xc0, 0xff).filter((c) => c !== "\u00d7" && c !== "\u00f7");
  const long = (pool, n) => Array.from({ length: n }, () => pick(pool)).join("");
  for (const n of [100, 1000, 4000]) {
    add("a".repeat(n));
    add(" " + long(letters, n));
    add(long([...letters, ...latin], n));
    add(long(cjk, n / 4));
    add(long(range(0x30, 0x39), n));
    add(long([..."!@#$%^&*()-=+[]{}<>/\\|~`'\".,:;?"], n));
    add(long(["ab", "ba", "aa", "abc", "ing", "tion", "the"], n / 2));
    add(long([" ", " ", "\n", "\t"], n) + "x");
  }
}

// --- whole documents of several KB -----------------------------------------------------------
for (let i = 0; i < 12; i++) {
  let doc = "";
  const target = randint(3000, 9000);
  while (doc.length < target) {
    const r = rand();
    if (r < 0.35) doc += pick(prose) + "\n\n";
    else if (r < 0.6) doc += pick(code) + "\n";
    else if (r < 0.75) doc += pick(phrases) + " " + pick(phrases) + "\n";
    else doc += mixture(randint(20, 200)) + "\n";
  }
  add(doc);
}

// --- letters and numbers new in Unicode 15.1 and 16.0 ---------------------------------------
// The boundary texts above come from Unicode 15.0 (Debian's unicode-data), but the header's
// tables and tiktoken have 16.0, which made these 5,004 code points letters or numbers
// (tools/check_unicode_vs_tiktoken.js lists them when run on 15.0 tables). Each appears
// in order at least once, the ends of each run beside their neighbours, and in mixtures.
{
  const added = [[0x1c89, 0x1c8a], [0xa7cb, 0xa7cd], [0xa7da, 0xa7dc], [0x105c0, 0x105f3],
    [0x10d40, 0x10d49], [0x10d4a, 0x10d65], [0x10d6f, 0x10d85], [0x10ec2, 0x10ec4], [0x11380, 0x11389],
    [0x1138b, 0x1138b], [0x1138e, 0x1138e], [0x11390, 0x113b5], [0x113b7, 0x113b7], [0x113d1, 0x113d1],
    [0x113d3, 0x113d3], [0x116d0, 0x116e3], [0x11bc0, 0x11be0], [0x11bf0, 0x11bf9], [0x13460, 0x143fa],
    [0x16100, 0x1611d], [0x16130, 0x16139], [0x16d40, 0x16d6c], [0x16d70, 0x16d79], [0x18cff, 0x18cff],
    [0x1ccf0, 0x1ccf9], [0x1e5d0, 0x1e5ed], [0x1e5f0, 0x1e5f0], [0x1e5f1, 0x1e5fa], [0x2ebf0, 0x2ee5d]];
  const ends = [];
  for (const [a, b] of added) for (const c of [a - 1, a, b, b + 1]) if (!ends.includes(c)) ends.push(c);
  addInContext(ends);
  const all = added.flatMap(([a, b]) => range(a, b));
  const seps = [" ", "  ", ", ", "\n", "1", " 2", "'s ", "x", ".", "\u3000", ""];
  for (let i = 0; i < all.length; i += 300) { // in order, a few hundred to a text
    let s = "";
    for (let k = i; k < i + 300 && k < all.length; k++) s += (rand() < 0.3 ? pick(seps) : "") + all[k];
    add(s);
  }
  const mixed = [...range(0x61, 0x7a), ..."AZ09", " ", " ", "\n", "'s", "'LL", "!", ".", "\u00e9", "\u6771",
    "\u0663", "\u00a0", "\u0301"];
  for (let i = 0; i < 40; i++) {
    let s = "";
    for (let k = randint(1, 40); k > 0; k--) s += rand() < 0.5 ? pick(all) : pick(mixed);
    add(s);
  }
}

// --- write --------------------------------------------------------------------------------
const outDir = path.join("tests", "data");
fs.mkdirSync(outDir, { recursive: true });
let json = '{"tiktoken": ' + JSON.stringify(tiktokenVersion) + ', "encoding": "gpt2", "cases": [\n';
cases.forEach((c, i) => {
  const ids = c.special ? enc.encode(c.text, "all") : enc.encode_ordinary(c.text);
  json += '{"text": ' + JSON.stringify(c.text) + (c.special ? ', "special": 1' : "") +
    ', "ids": [' + Array.from(ids).join(",") + "]}" + (i + 1 < cases.length ? ",\n" : "\n");
});
json += "]}\n";
fs.writeFileSync(path.join(outDir, "tokenizer_cases.json"), json);

const chunks = [];
for (let id = 0; id < 50257; id++) {
  const b = Buffer.from(enc.decode_single_token_bytes(id));
  if (b.length > 255) throw new Error("token " + id + " is longer than 255 bytes");
  chunks.push(Buffer.from([b.length]), b);
}
fs.writeFileSync(path.join(outDir, "gpt2_token_bytes.bin"), Buffer.concat(chunks));
console.log(cases.length + " cases, " + json.length + " bytes of JSON; tiktoken " + tiktokenVersion);
enc.free();
