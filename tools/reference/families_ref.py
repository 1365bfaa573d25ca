"""The model families beyond GPT-2 in float64, written from Hugging Face transformers' definitions
(modeling_llama.py, modeling_mistral.py, modeling_qwen2.py, modeling_gemma.py, modeling_gpt_neox.py,
modeling_gptj.py, modeling_rope_utils.py): the oracle behind tests/data/golden/<family model>.safetensors.
It shares no code with patchscope.h. It also writes the small random checkpoints the tests load
(tests/data/families/<name>/), in the Hub's layout: config.json with the keys real configs carry, HF
tensor names, nn.Linear weights [out, in], the buffers real files carry, F32/F16/BF16, one 3-shard
checkpoint with model.safetensors.index.json.

    /usr/bin/python3 tools/reference/families_ref.py tests/data/families tests/data/golden [tests/fuzz/seeds/safetensors]

It also writes pythia-to-llama.safetensors, a cross-family affine Patchscope (see cross_family), and
tiny-llama.safetensors, the trained weights/tiny-llama through this oracle (see trained_llama).

Hook points (as for GPT-2, TransformerLens names; see the header's ps_point):
  q, k, v     projections with their biases, BEFORE the rotary embedding; k, v have the KV heads
  pattern     [T_query, n_head, T_key]; 0 for future keys and keys outside a sliding window
  z           attention-weighted values per query head, concatenated, before the output projection
  mlp_pre     non-gated: fc output before the activation; gated: gate_proj(x) before it
  mlp_post    act(fc); gated: act(gate) * up_proj(x)
  resid_mid   resid_pre + attn_out, also in parallel blocks (where the MLP reads norm(resid_pre))
Facts restated from HF (in our words):
  - RMSNorm: x / sqrt(mean(x^2) + eps) * w; Gemma multiplies by (1 + w) instead.
  - Rotary, rotate-half (Llama, NeoX): pairs (i, i + d/2) of the first d rotated dims turn by
    pos * inv_freq[i], inv_freq[i] = base^(-2i/d). GPT-J pairs (2i, 2i + 1) (rotate_every_two).
  - rope_scaling "linear": inv_freq / factor. "llama3": wavelength 2pi/f; above orig/low_freq_factor:
    f / factor; below orig/high_freq_factor: f; between: (1 - s) f / factor + s f with
    s = (orig / wavelength - low) / (high - low). The key is "rope_type" or the older "type".
  - Mistral's sliding window W: query i sees key j iff 0 <= i - j < W.
  - Gemma: embeddings times sqrt(hidden_size), the factor rounded to the embedding's dtype; the
    activation is hidden_activation if given, else tanh GELU (whatever hidden_act says).
  - GPT-NeoX: query_key_value's output rows are per head [q_h | k_h | v_h]; rotary_ndims =
    int(head_dim * rotary_pct); parallel residual x + attn(ln1(x)) + mlp(ln2(x)); "gelu" is exact.
  - GPT-J: x + attn(ln_1(x)) + mlp(ln_1(x)); no attention biases; gelu_new; lm_head has a bias.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_ref import read_safetensors, write_safetensors  # noqa: E402

POINTS = ("resid_pre", "q", "k", "v", "pattern", "z", "attn_out", "resid_mid", "mlp_pre", "mlp_post", "mlp_out",
          "resid_post")
MIN_GAP = 1e-2

# name: model_type, layers, hidden, heads, kv heads, head_dim (None: hidden / heads), d_mlp, dtype, extra config
SPECS = {
    "llama": ("llama", 2, 32, 4, 2, None, 72, "F32",
              {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 16}, "rms_norm_eps": 1e-6}),
    "llama-tied": ("llama", 2, 32, 4, 2, 12, 40, "BF16",
                   {"attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True,
                    "rope_scaling": {"type": "linear", "factor": 2.0}, "shards": 3, "inv_freq": True}),
    "mistral": ("mistral", 2, 32, 4, 2, None, 64, "F16", {"sliding_window": 4}),
    "qwen2": ("qwen2", 2, 32, 4, 2, None, 48, "F32", {"tie_word_embeddings": True, "rope_theta": 1000000.0}),
    "pythia": ("gpt_neox", 2, 64, 4, 4, None, 256, "F16", {"rotary_pct": 0.25, "use_parallel_residual": True}),
    "neox-seq": ("gpt_neox", 3, 32, 4, 4, None, 128, "F32", {"rotary_pct": 1.0, "use_parallel_residual": False}),
    "gptj": ("gptj", 2, 64, 4, 4, None, 256, "F32", {"rotary_dim": 8}),
    "gemma": ("gemma", 2, 32, 4, 1, 16, 64, "BF16", {"hidden_activation": "gelu_pytorch_tanh"}),
}
VOCAB, CTX = 100, 64
IDS = [7, 42, 3, 88, 15, 61, 29, 50, 11]


# --- checkpoints ------------------------------------------------------------------------------

def bf16_round(a):
    """float32 -> the nearest bfloat16 (ties to even), returned as float32"""
    a = np.asarray(a, dtype=np.float32)
    u = np.atleast_1d(a).view(np.uint32).astype(np.uint64)
    u = ((u + np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)) << np.uint64(16)
    return u.astype(np.uint32).view(np.float32).reshape(a.shape)


def stored(a, dtype):
    """the values a file of this dtype holds, as float32"""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "F16":
        return a.astype(np.float16).astype(np.float32)
    if dtype == "BF16":
        return bf16_round(a)
    return a


def write_st(path, tensors, dtype):
    """safetensors of weights in dtype (float buffers like inv_freq stay F32)"""
    header, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name], dtype=np.float32)
        dt = "F32" if name.endswith("inv_freq") or name.endswith("masked_bias") or name.endswith(".attn.bias") or \
            name.endswith("attention.bias") else dtype
        if dt == "F16":
            b = a.astype("<f2").tobytes()
        elif dt == "BF16":
            b = (bf16_round(a).view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            b = a.astype("<f4").tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))
    return off


def make_weights(name, spec, rng):
    mt, L, C, H, KV, hd, F, dt, extra = spec
    D = hd or C // H
    W = {}

    def mat(o, i, scale=1.0):
        return rng.standard_normal((o, i)) * scale / math.sqrt(i)

    def vec(n, s=0.1):
        return rng.standard_normal(n) * s

    def norm_w(n):
        return vec(n, 0.1) if mt == "gemma" else 1 + vec(n, 0.1)

    if mt in ("llama", "mistral", "qwen2", "gemma"):
        tied = extra.get("tie_word_embeddings", mt == "gemma")
        W["model.embed_tokens.weight"] = rng.standard_normal((VOCAB, C)) * (0.3 if tied else 1.0)
        for l in range(L):
            p = f"model.layers.{l}."
            W[p + "input_layernorm.weight"] = norm_w(C)
            W[p + "post_attention_layernorm.weight"] = norm_w(C)
            for nm, o in (("q", H * D), ("k", KV * D), ("v", KV * D)):
                W[p + f"self_attn.{nm}_proj.weight"] = mat(o, C, 1.5)
                if extra.get("attention_bias") or mt == "qwen2":
                    W[p + f"self_attn.{nm}_proj.bias"] = vec(o)
            W[p + "self_attn.o_proj.weight"] = mat(C, H * D)
            if extra.get("attention_bias"):
                W[p + "self_attn.o_proj.bias"] = vec(C)
            W[p + "mlp.gate_proj.weight"] = mat(F, C)
            W[p + "mlp.up_proj.weight"] = mat(F, C)
            W[p + "mlp.down_proj.weight"] = mat(C, F)
            if extra.get("mlp_bias"):
                for nm, o in (("gate", F), ("up", F), ("down", C)):
                    W[p + f"mlp.{nm}_proj.bias"] = vec(o)
            if extra.get("inv_freq"):
                W[p + "self_attn.rotary_emb.inv_freq"] = 1.0 / 10000 ** (np.arange(0, D, 2) / D)
        W["model.norm.weight"] = norm_w(C)
        if not extra.get("tie_word_embeddings", mt == "gemma"):
            W["lm_head.weight"] = mat(VOCAB, C, 2.0)
    elif mt == "gpt_neox":
        W["gpt_neox.embed_in.weight"] = rng.standard_normal((VOCAB, C))
        rot = int(D * extra["rotary_pct"])
        for l in range(L):
            p = f"gpt_neox.layers.{l}."
            for nm in ("input_layernorm", "post_attention_layernorm"):
                W[p + nm + ".weight"], W[p + nm + ".bias"] = 1 + vec(C), vec(C)
            W[p + "attention.query_key_value.weight"] = mat(3 * C, C, 1.5)
            W[p + "attention.query_key_value.bias"] = vec(3 * C)
            W[p + "attention.dense.weight"], W[p + "attention.dense.bias"] = mat(C, C), vec(C)
            W[p + "mlp.dense_h_to_4h.weight"], W[p + "mlp.dense_h_to_4h.bias"] = mat(F, C), vec(F)
            W[p + "mlp.dense_4h_to_h.weight"], W[p + "mlp.dense_4h_to_h.bias"] = mat(C, F), vec(C)
            W[p + "attention.bias"] = np.tril(np.ones((CTX, CTX)))[None, None]
            W[p + "attention.masked_bias"] = np.array(-1e9)
            W[p + "attention.rotary_emb.inv_freq"] = 1.0 / 10000 ** (np.arange(0, rot, 2) / rot)
        W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"] = 1 + vec(C), vec(C)
        W["embed_out.weight"] = mat(VOCAB, C, 2.0)
    elif mt == "gptj":
        W["transformer.wte.weight"] = rng.standard_normal((VOCAB, C))
        for l in range(L):
            p = f"transformer.h.{l}."
            W[p + "ln_1.weight"], W[p + "ln_1.bias"] = 1 + vec(C), vec(C)
            for nm in ("q", "k", "v"):
                W[p + f"attn.{nm}_proj.weight"] = mat(C, C, 1.5)
            W[p + "attn.out_proj.weight"] = mat(C, C)
            W[p + "mlp.fc_in.weight"], W[p + "mlp.fc_in.bias"] = mat(F, C), vec(F)
            W[p + "mlp.fc_out.weight"], W[p + "mlp.fc_out.bias"] = mat(C, F), vec(C)
            W[p + "attn.bias"] = np.tril(np.ones((CTX, CTX)))[None, None]
            W[p + "attn.masked_bias"] = np.array(-1e9)
        W["transformer.ln_f.weight"], W["transformer.ln_f.bias"] = 1 + vec(C), vec(C)
        W["lm_head.weight"], W["lm_head.bias"] = mat(VOCAB, C, 2.0), vec(VOCAB)
    return {k: np.asarray(v, dtype=np.float32) for k, v in W.items()}


def config_of(name, spec):
    mt, L, C, H, KV, hd, F, dt, extra = spec
    torch_dtype = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dt]
    if mt in ("llama", "mistral", "qwen2", "gemma"):
        arch = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
                "gemma": "GemmaForCausalLM"}[mt]
        c = {"architectures": [arch], "model_type": mt, "hidden_size": C, "intermediate_size": F,
             "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
             "max_position_embeddings": CTX, "vocab_size": VOCAB, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
             "hidden_act": "silu" if mt != "gemma" else "gelu", "bos_token_id": 1, "eos_token_id": 2,
             "tie_word_embeddings": mt == "gemma", "torch_dtype": torch_dtype, "use_cache": True,
             "attention_dropout": 0.0, "initializer_range": 0.02}
        if mt == "llama":
            c.update({"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1, "rope_scaling": None})
        if mt == "mistral":
            c["sliding_window"] = None
        if mt == "qwen2":
            c.update({"use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28})
        if mt == "gemma":
            c["head_dim"] = hd
        if hd:
            c["head_dim"] = hd
    elif mt == "gpt_neox":
        c = {"architectures": ["GPTNeoXForCausalLM"], "model_type": mt, "hidden_size": C, "intermediate_size": F,
             "num_hidden_layers": L, "num_attention_heads": H, "max_position_embeddings": CTX, "vocab_size": VOCAB,
             "layer_norm_eps": 1e-5, "rotary_emb_base": 10000, "hidden_act": "gelu", "bos_token_id": 0,
             "eos_token_id": 0, "tie_word_embeddings": False, "torch_dtype": torch_dtype, "use_cache": True,
             "initializer_range": 0.02}
    else:
        c = {"architectures": ["GPTJForCausalLM"], "model_type": mt, "n_embd": C, "n_inner": None, "n_layer": L,
             "n_head": H, "n_positions": CTX, "vocab_size": VOCAB, "layer_norm_epsilon": 1e-5,
             "activation_function": "gelu_new", "bos_token_id": 50256, "eos_token_id": 50256,
             "tie_word_embeddings": False, "torch_dtype": torch_dtype}
    c.update({k: v for k, v in extra.items() if k not in ("shards", "inv_freq")})
    return c


def write_model(outdir, name, spec, W, cfg):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    n = spec[8].get("shards", 1)
    if n == 1:
        write_st(os.path.join(d, "model.safetensors"), W, spec[7])
        return
    names, wm, total = sorted(W), {}, 0
    for k in range(n):
        part = names[k * len(names) // n:(k + 1) * len(names) // n]
        fn = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        total += write_st(os.path.join(d, fn), {t: W[t] for t in part}, spec[7])
        wm.update({t: fn for t in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
        f.write("\n")


# --- the reference ------------------------------------------------------------------------------

class Model:
    def __init__(self, spec, W, cfg):
        self.mt, self.L, self.C, self.H, self.KV, hd, self.F, self.dt, self.extra = spec
        self.D = hd or self.C // self.H
        self.cfg = cfg
        self.W = {k: torch.tensor(stored(v, self.dt), dtype=torch.float64) for k, v in W.items()
                  if not k.endswith(("inv_freq", "attn.bias", "masked_bias", "attention.bias"))}
        mt = self.mt
        self.llama = mt in ("llama", "mistral", "qwen2", "gemma")
        self.parallel = mt == "gptj" or (mt == "gpt_neox" and cfg.get("use_parallel_residual", True))
        if self.llama:
            self.rot, base, self.interleaved = self.D, cfg.get("rope_theta", 10000.0), False
        elif mt == "gpt_neox":
            self.rot, base, self.interleaved = int(self.D * cfg["rotary_pct"]), cfg["rotary_emb_base"], False
        else:
            self.rot, base, self.interleaved = cfg["rotary_dim"], 10000.0, True
        inv = 1.0 / base ** (torch.arange(0, self.rot, 2, dtype=torch.float64) / self.rot)
        rs = cfg.get("rope_scaling") or {}
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":
            inv = inv / rs["factor"]
        elif kind == "llama3":
            f, lo, hi, orig = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], \
                rs["original_max_position_embeddings"]
            out = []
            for x in inv.tolist():
                wl = 2 * math.pi / x
                if wl < orig / hi:
                    out.append(x)
                elif wl > orig / lo:
                    out.append(x / f)
                else:
                    s = (orig / wl - lo) / (hi - lo)
                    out.append((1 - s) * x / f + s * x)
            inv = torch.tensor(out, dtype=torch.float64)
        self.inv_freq = inv
        self.window = cfg.get("sliding_window") if mt == "mistral" else None
        if mt == "gemma":
            act = cfg.get("hidden_activation") or "gelu_pytorch_tanh"
        elif mt == "gptj":
            act = cfg.get("activation_function", "gelu_new")
        else:
            act = cfg.get("hidden_act", "silu")
        self.act = {"silu": torch.nn.functional.silu, "gelu": lambda x: torch.nn.functional.gelu(x),
                    "gelu_new": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
                    "gelu_pytorch_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh")}[act]
        self.tied = cfg.get("tie_word_embeddings", mt == "gemma")

    def norm(self, x, p):
        W = self.W
        if self.llama:
            w = W[p + "weight"]
            y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.cfg["rms_norm_eps"])
            return y * (1 + w) if self.mt == "gemma" else y * w
        eps = self.cfg.get("layer_norm_eps", self.cfg.get("layer_norm_epsilon"))
        return torch.nn.functional.layer_norm(x, (self.C,), W[p + "weight"], W[p + "bias"], eps)

    def lin(self, x, name, bias=True):
        y = x @ self.W[name + ".weight"].T
        b = self.W.get(name + ".bias")
        return y + b if bias and b is not None else y

    def rotate(self, x, heads):  # x [T, heads*D]
        T = x.shape[0]
        x = x.reshape(T, heads, self.D).clone()
        ang = torch.arange(T, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        h = self.rot // 2
        if self.interleaved:
            a, b = x[..., 0:self.rot:2].clone(), x[..., 1:self.rot:2].clone()
            x[..., 0:self.rot:2], x[..., 1:self.rot:2] = a * c - b * s, b * c + a * s
        else:
            a, b = x[..., :h].clone(), x[..., h:self.rot].clone()
            x[..., :h], x[..., h:self.rot] = a * c - b * s, b * c + a * s
        return x.reshape(T, heads * self.D)

    def names(self, l):
        if self.llama:
            p = f"model.layers.{l}."
            return dict(ln1=p + "input_layernorm.", ln2=p + "post_attention_layernorm.", q=p + "self_attn.q_proj",
                        k=p + "self_attn.k_proj", v=p + "self_attn.v_proj", o=p + "self_attn.o_proj",
                        gate=p + "mlp.gate_proj", up=p + "mlp.up_proj", down=p + "mlp.down_proj")
        if self.mt == "gptj":
            p = f"transformer.h.{l}."
            return dict(ln1=p + "ln_1.", ln2=p + "ln_1.", q=p + "attn.q_proj", k=p + "attn.k_proj",
                        v=p + "attn.v_proj", o=p + "attn.out_proj", fc=p + "mlp.fc_in", down=p + "mlp.fc_out")
        p = f"gpt_neox.layers.{l}."
        return dict(ln1=p + "input_layernorm.", ln2=p + "post_attention_layernorm.", qkv=p + "attention.query_key_value",
                    o=p + "attention.dense", fc=p + "mlp.dense_h_to_4h", down=p + "mlp.dense_4h_to_h")

    def forward(self, ids, hook=None):
        """logits [T, V]; hook(point, layer, x) may return a replacement"""
        def at(point, layer, x):
            r = hook(point, layer, x) if hook else None
            return x if r is None else r
        W, T, H, KV, D = self.W, len(ids), self.H, self.KV, self.D
        emb = W["model.embed_tokens.weight" if self.llama else
                "gpt_neox.embed_in.weight" if self.mt == "gpt_neox" else "transformer.wte.weight"]
        x = emb[torch.tensor(ids)]
        if self.mt == "gemma":
            x = x * float(stored(np.float32(math.sqrt(self.C)), self.dt))
        x = at("embed", -1, x)
        for l in range(self.L):
            n = self.names(l)
            x = at("resid_pre", l, x)
            xn = self.norm(x, n["ln1"])
            if "qkv" in n:
                qkv = self.lin(xn, n["qkv"]).reshape(T, H, 3 * D)
                q, k, v = (qkv[..., i * D:(i + 1) * D].reshape(T, H * D) for i in range(3))
            else:
                q, k, v = self.lin(xn, n["q"]), self.lin(xn, n["k"]), self.lin(xn, n["v"])
            q, k, v = at("q", l, q), at("k", l, k), at("v", l, v)
            qr, kr = self.rotate(q, H), self.rotate(k, KV)
            qh, kh, vh = qr.reshape(T, H, D), kr.reshape(T, KV, D), v.reshape(T, KV, D)
            g = H // KV
            kh, vh = kh.repeat_interleave(g, dim=1), vh.repeat_interleave(g, dim=1)
            sc = torch.einsum("ihd,jhd->ihj", qh, kh) / math.sqrt(D)
            i_, j_ = torch.arange(T)[:, None], torch.arange(T)[None, :]
            allowed = j_ <= i_
            if self.window:
                allowed = allowed & (i_ - j_ < self.window)
            sc = sc.masked_fill(~allowed[:, None, :], float("-inf"))
            pat = at("pattern", l, torch.softmax(sc, -1))
            z = at("z", l, torch.einsum("ihj,jhd->ihd", pat, vh).reshape(T, H * D))
            a = at("attn_out", l, self.lin(z, n["o"]))
            x_in = x
            x = at("resid_mid", l, x + a)
            xm = self.norm(x_in if self.parallel else x, n["ln2"])
            if "gate" in n:
                pre = at("mlp_pre", l, self.lin(xm, n["gate"]))
                post = at("mlp_post", l, self.act(pre) * self.lin(xm, n["up"]))
            else:
                pre = at("mlp_pre", l, self.lin(xm, n["fc"]))
                post = at("mlp_post", l, self.act(pre))
            m = at("mlp_out", l, self.lin(post, n["down"]))
            x = at("resid_post", l, x + m)
        fin = "model.norm." if self.llama else "gpt_neox.final_layer_norm." if self.mt == "gpt_neox" else \
            "transformer.ln_f."
        y = at("ln_final", -1, self.norm(x, fin))
        head = emb if self.tied else W["lm_head.weight" if self.mt != "gpt_neox" else "embed_out.weight"]
        logits = y @ head.T
        if self.mt == "gptj":
            logits = logits + W["lm_head.bias"]
        return at("logits", -1, logits)

    def run(self, ids, patches=()):
        cache = {}

        def hook(point, layer, x):
            for (pp, pl, pos, vec) in patches:
                if pp == point and pl == layer:
                    x = x.clone()
                    x[pos] = vec
            cache[f"{point}.{layer}" if layer >= 0 else point] = x
            return x
        return self.forward(ids, hook), cache


def gap(row):
    s = torch.sort(row, descending=True).values
    return float(s[0] - s[1])


def goldens(name, m):
    g = {"ids": np.array(IDS, dtype=np.int32)}
    logits, cache = m.run(IDS)
    g["logits"] = logits
    for k, v in cache.items():
        if k != "logits":
            g[k] = v
    # self-checks: writing a value back changes nothing, a different one does
    same = m.forward(IDS, lambda p, l, x: x.clone())
    assert torch.equal(same, logits), name
    for pt in ("q", "k", "resid_mid", "mlp_pre"):
        other = m.forward(IDS, lambda p, l, x, pt=pt: x * 1.5 if p == pt and l == 0 else None)
        assert (other - logits).abs().max() > 1e-3, (name, pt)
    pat = cache["pattern.0"]
    assert torch.allclose(pat.sum(-1), torch.ones_like(pat.sum(-1))) and float(pat.permute(1, 0, 2).triu(1).abs().max()) == 0
    if m.window:
        assert float(pat[8, :, :8 - m.window + 1].abs().max()) == 0 and float(pat[8, :, 8 - m.window + 1].min()) > 0
    # greedy generation from the first 4 ids
    ids = IDS[:4]
    for _ in range(8):
        row = m.forward(ids)[-1]
        assert gap(row) >= MIN_GAP, (name, "greedy near-tie")
        ids = ids + [int(row.argmax())]
    g["gen.ids"] = np.array(ids, dtype=np.int32)
    # a Patchscope: resid_post of source layer ls at src_pos over resid_post of target layer lt at tgt_pos
    src, tgt, ls, lt, sp, tp = IDS, [5, 17, 33, 70, 2, 91], m.L - 1, 0, 3, 5
    h = m.run(src)[1][f"resid_post.{ls}"][sp].float().double()  # the C side passes float32
    sl = m.forward(tgt, lambda p, l, x: (lambda y: (y.__setitem__(tp, h), y)[1])(x.clone())
                   if p == "resid_post" and l == lt else None)[-1]
    g.update({"scope.src_ids": np.array(src, dtype=np.int32), "scope.tgt_ids": np.array(tgt, dtype=np.int32),
              "scope.ls": np.array([ls], dtype=np.int32), "scope.lt": np.array([lt], dtype=np.int32),
              "scope.src_pos": np.array([sp], dtype=np.int32), "scope.tgt_pos": np.array([tp], dtype=np.int32),
              "scope.logits": sl})
    return {k: (v.numpy().astype(np.float32) if torch.is_tensor(v) else v) for k, v in g.items()}


def cross_family(models, goldendir):
    """pythia -> llama (64 -> 32 wide): resid_post of pythia's layer 1 at position 3 through a fixed
    affine map [x, 1] @ A, written over llama's resid_post of layer lt at the last target position,
    for every lt; A is rounded to float32 (the C side reads it so)"""
    src, tgt = models["pythia"], models["llama"]
    rng = np.random.default_rng(7)
    A = (rng.standard_normal((src.C + 1, tgt.C)) / math.sqrt(src.C)).astype(np.float32)
    h = src.run(IDS)[1]["resid_post.1"][3].float().double()
    y = torch.cat([h, torch.ones(1, dtype=torch.float64)]) @ torch.tensor(A, dtype=torch.float64)
    tgt_ids, out = [5, 17, 33, 70, 2, 91], []
    for lt in range(tgt.L):
        def hook(p, l, x, lt=lt):
            if p == "resid_post" and l == lt:
                x = x.clone()
                x[-1] = y
                return x
        out.append(tgt.forward(tgt_ids, hook)[-1])
    write_safetensors(os.path.join(goldendir, "pythia-to-llama.safetensors"),
                      {"A": A, "src_ids": np.array(IDS, dtype=np.int32), "tgt_ids": np.array(tgt_ids, dtype=np.int32),
                       "logits": torch.stack(out).numpy().astype(np.float32)})


def load_llama(path):
    """a Llama folder in the Hub's layout (one model.safetensors) as this oracle's Model"""
    cfg = json.load(open(os.path.join(path, "config.json")))
    W, _ = read_safetensors(os.path.join(path, "model.safetensors"))
    spec = ("llama", cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
            cfg["num_key_value_heads"], None, cfg["intermediate_size"], "F32", {})  # bf16 values, read exactly
    return Model(spec, W, cfg)


def trained_llama(goldendir, path="weights/tiny-llama"):
    """the trained weights/tiny-llama (BF16) through this oracle: logits of a BOS-led prompt"""
    m = load_llama(path)
    ids = [1, 415, 5565, 302, 4843, 349]
    logits, cache = m.run(ids)
    write_safetensors(os.path.join(goldendir, "tiny-llama.safetensors"),
                      {"ids": np.array(ids, dtype=np.int32), "logits": logits[-1:].numpy().astype(np.float32),
                       f"resid_post.{m.L - 1}": cache[f"resid_post.{m.L - 1}"].numpy().astype(np.float32)})


def fuzz_seeds(seeddir):
    """micro checkpoints of each family as seeds for tests/fuzz/safetensors.c: an options byte 01,
    config.json, a NUL, the .safetensors bytes (vocabulary 16, width 8)"""
    global VOCAB
    saved, VOCAB = VOCAB, 16
    micro = {"llama": ("llama", 1, 8, 2, 1, None, 12, "F32", SPECS["llama"][8]),
             "gemma": ("gemma", 1, 8, 2, 1, 4, 12, "BF16", {}),
             "mistral": ("mistral", 1, 8, 2, 2, None, 12, "F16", {"sliding_window": 2}),
             "pythia": ("gpt_neox", 1, 8, 2, 2, None, 16, "F16", {"rotary_pct": 0.5, "use_parallel_residual": True}),
             "gptj": ("gptj", 1, 8, 2, 2, None, 32, "F32", {"rotary_dim": 2})}
    tmp = os.path.join(seeddir, ".tmp.safetensors")
    for i, (name, spec) in enumerate(micro.items()):
        W = make_weights(name, spec, np.random.default_rng(50 + i))
        W = {k: v for k, v in W.items() if not k.endswith(("attn.bias", "attention.bias"))}  # keep seeds small
        cfg = config_of(name, spec)
        cfg["max_position_embeddings" if "n_positions" not in cfg else "n_positions"] = 8
        write_st(tmp, W, spec[7])
        with open(tmp, "rb") as f:
            body = f.read()
        with open(os.path.join(seeddir, f"family-{name}"), "wb") as f:
            f.write(b"\x01" + json.dumps(cfg).encode() + b"\x00" + body)
    os.remove(tmp)
    VOCAB = saved


def main(modeldir, goldendir):
    models = {}
    for i, (name, spec) in enumerate(SPECS.items()):
        rng = np.random.default_rng(1000 + i)
        W = make_weights(name, spec, rng)
        cfg = config_of(name, spec)
        write_model(modeldir, name, spec, W, cfg)
        m = models[name] = Model(spec, W, cfg)
        g = goldens(name, m)
        write_safetensors(os.path.join(goldendir, f"{name}.safetensors"), g)
        lg = g["logits"]
        print(f"{name}: logits |max| {np.abs(lg).max():.2f}, greedy {g['gen.ids'][4:].tolist()}")
    cross_family(models, goldendir)
    trained_llama(goldendir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    if len(sys.argv) > 3:
        fuzz_seeds(sys.argv[3])
