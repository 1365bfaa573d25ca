"""GPT-2 in float64, written from the model's definition: the oracle behind tests/data/golden/.

It shares no code with patchscope.h on purpose, so the two can only agree by both being right.
Everything runs in torch.float64; weights stored as F16/BF16 are widened exactly as stored.

Hook points (TransformerLens names, 0-based layers, one row per position t):
  embed                      wte[id] + wpe[t]
  resid_pre.l                input of block l
  q.l, k.l, v.l              [T, C] after the c_attn bias; column = head * d_head + j
  pattern.l                  [T_query, H, T_key] softmax probabilities, 0 where key > query
  z.l                        attention-weighted v, heads concatenated, before c_proj
  attn_out.l                 c_proj output incl. bias
  resid_mid.l                resid_pre + attn_out
  mlp_pre.l, mlp_post.l      c_fc output incl. bias [T, 4C], and gelu_new of it
  mlp_out.l                  mlp c_proj output incl. bias
  resid_post.l               resid_mid + mlp_out  (h_l: the block output, before ln_f)
  ln_final                   ln_f(resid_post of the last block)
A hook sees each value as it is made and may return a replacement, which everything downstream uses.
"""
import json
import math
import os
import struct

import numpy as np
import torch

HOOK_POINTS = ("resid_pre", "q", "k", "v", "pattern", "z", "attn_out", "resid_mid",
               "mlp_pre", "mlp_post", "mlp_out", "resid_post")
HEADS_BY_WIDTH = {768: 12, 1024: 16, 1280: 20, 1600: 25}  # gpt2, -medium, -large, -xl


# ---------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header size, JSON header, raw little-endian data

_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict). BF16 becomes float32 (exact: it is float32's top half)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(data):
            raise ValueError(f"{path}: {name}: data_offsets outside the file")
        buf = data[begin:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=_NUMPY_DTYPES[info["dtype"]])
        if arr.size != count:
            raise ValueError(f"{path}: {name}: {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape)
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: numpy array of float32 or int32}; written in sorted name order."""
    header, chunks, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype == np.float32:
            dt, b = "F32", a.astype("<f4").tobytes()
        elif a.dtype == np.int32:
            dt, b = "I32", a.astype("<i4").tobytes()
        else:
            raise TypeError(f"{name}: write F32 or I32, not {a.dtype}")
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


# ---------------------------------------------------------------------------------------------
# The model

class GPT2:
    """Loads a directory (config.json + model.safetensors) or a single .safetensors file."""

    def __init__(self, path):
        config = {}
        if os.path.isdir(path):
            if os.path.exists(os.path.join(path, "config.json")):
                with open(os.path.join(path, "config.json")) as f:
                    config = json.load(f)
            path = os.path.join(path, "model.safetensors")
        raw, meta = read_safetensors(path)
        w = {}
        for name, arr in raw.items():
            if name.startswith("transformer."):
                name = name[len("transformer."):]
            if name.split(".")[2:] in (["attn", "bias"], ["attn", "masked_bias"]):
                continue  # the causal-mask buffers, not weights
            w[name] = torch.from_numpy(arr.astype(np.float64))
        if "lm_head.weight" in w:  # GPT-2 ties it to wte; an untied one is a different model
            if not torch.equal(w.pop("lm_head.weight"), w["wte.weight"]):
                raise ValueError("lm_head.weight differs from wte.weight")
        self.w = w
        self.n_vocab, self.n_embd = w["wte.weight"].shape
        self.n_ctx = w["wpe.weight"].shape[0]
        self.n_layer = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("h."))
        if "n_head" in config:
            self.n_head = int(config["n_head"])
        elif "n_head" in meta:
            self.n_head = int(meta["n_head"])
        else:
            self.n_head = HEADS_BY_WIDTH[self.n_embd]
        self.eps = float(config.get("layer_norm_epsilon", 1e-5))
        if config.get("n_layer", self.n_layer) != self.n_layer or config.get("n_embd", self.n_embd) != self.n_embd:
            raise ValueError("config.json disagrees with the tensors")

    # The pieces, each as its definition states it.

    def layer_norm(self, x, prefix):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased, as in the paper's LayerNorm
        return (x - mean) / torch.sqrt(var + self.eps) * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def conv1d(self, x, prefix):  # GPT-2's Conv1D: weight stored [in, out]
        return x @ self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    @staticmethod
    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    def forward(self, ids, hook=None):
        """ids: list of token ids. hook(point, layer, value) -> None or a replacement value.
        Returns logits [T, V]."""
        hk = (lambda p, l, x: x) if hook is None else (lambda p, l, x: _or(hook(p, l, x), x))
        T, C, H = len(ids), self.n_embd, self.n_head
        d = C // H
        if not 0 < T <= self.n_ctx or min(ids) < 0 or max(ids) >= self.n_vocab:
            raise ValueError("prompt out of range")
        idx = torch.tensor(ids)
        x = hk("embed", None, self.w["wte.weight"][idx] + self.w["wpe.weight"][:T])
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        for l in range(self.n_layer):
            p = f"h.{l}."
            x = hk("resid_pre", l, x)
            qkv = self.conv1d(self.layer_norm(x, p + "ln_1"), p + "attn.c_attn")
            q = hk("q", l, qkv[:, :C])
            k = hk("k", l, qkv[:, C:2 * C])
            v = hk("v", l, qkv[:, 2 * C:])
            qh, kh, vh = (t.reshape(T, H, d).transpose(0, 1) for t in (q, k, v))  # [H, T, d]
            scores = qh @ kh.transpose(1, 2) / math.sqrt(d)
            scores = scores.masked_fill(~causal, float("-inf"))
            e = torch.exp(scores - scores.max(-1, keepdim=True).values)
            pattern = hk("pattern", l, (e / e.sum(-1, keepdim=True)).transpose(0, 1))  # [Tq, H, Tk]
            z = hk("z", l, (pattern.transpose(0, 1) @ vh).transpose(0, 1).reshape(T, C))
            attn_out = hk("attn_out", l, self.conv1d(z, p + "attn.c_proj"))
            x = hk("resid_mid", l, x + attn_out)
            mlp_pre = hk("mlp_pre", l, self.conv1d(self.layer_norm(x, p + "ln_2"), p + "mlp.c_fc"))
            mlp_post = hk("mlp_post", l, self.gelu_new(mlp_pre))
            mlp_out = hk("mlp_out", l, self.conv1d(mlp_post, p + "mlp.c_proj"))
            x = hk("resid_post", l, x + mlp_out)
        return self.unembed(hk("ln_final", None, self.layer_norm(x, "ln_f")))

    def unembed(self, x):  # tied: the transpose of the token embedding
        return x @ self.w["wte.weight"].T

    def lens(self, h):
        """Logit lens: logits of a block output read through ln_f and the unembedding."""
        return self.unembed(self.layer_norm(h, "ln_f"))

    # Helpers built on the hook.

    def run(self, ids, patches=(), capture=False):
        """patches: (point, layer, pos, vector) overwrites. Returns (logits, cache) where cache maps
        'point.layer' (or 'embed' / 'ln_final') to the value after any patch."""
        cache = {}

        def hook(point, layer, x):
            for pp, pl, pos, vec in patches:
                if pp == point and pl == layer:
                    x = x.clone()
                    x[pos] = torch.as_tensor(vec, dtype=torch.float64)
            if capture:
                cache[point if layer is None else f"{point}.{layer}"] = x
            return x

        return self.forward(ids, hook), cache

    def generate(self, ids, n, patches=()):
        """Greedy decoding of n tokens (ties -> lowest id). Patches name prompt positions. Re-running
        the whole sequence with the same overwrites equals patching the prompt pass once and decoding
        from the KV cache: by causality the prompt rows come out the same, and the new rows see them."""
        out = list(ids)
        for _ in range(n):
            logits, _ = self.run(out, patches)
            out.append(argmax(logits[-1]))
        return out


def _or(a, b):
    return b if a is None else a


def argmax(x):
    """Index of the largest value, the lowest index among ties."""
    x = x.tolist()
    return x.index(max(x))


def softmax(x):
    e = torch.exp(x - x.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)
