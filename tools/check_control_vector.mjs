// A control-vector GGUF through Hugging Face's own GGUF parser (npm @huggingface/gguf 0.4.6):
// its metadata, tensor infos and the first floats of each direction, for comparing a file
// patchscope wrote with what llama.cpp's tools expect.
//
//   npm i -E @huggingface/gguf@0.4.6 && node tools/check_control_vector.mjs build/cv.gguf
import { gguf } from "@huggingface/gguf";
import { readFileSync } from "node:fs";

const path = process.argv[2];
const { metadata, tensorInfos, tensorDataOffset } = await gguf(path, { allowLocalFile: true });
const plain = (k, v) => (typeof v === "bigint" ? Number(v) : v);
console.log(JSON.stringify(metadata, plain));
const bytes = readFileSync(path);
for (const t of tensorInfos) {
  const at = Number(tensorDataOffset) + Number(t.offset);
  const n = Math.min(4, Number(t.shape[0]));
  const first = Array.from({ length: n }, (_, i) => bytes.readFloatLE(at + 4 * i));
  console.log(t.name, JSON.stringify(t.shape, plain), "dtype", t.dtype, "first", first.join(" "));
}
