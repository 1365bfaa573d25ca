"""Llama in plain PyTorch, with Hugging Face's parameter names (the model of weights/tiny-llama).

Computed as transformers' modeling_llama.py computes LlamaForCausalLM (read there, written anew here):
- RMSNorm: x / sqrt(mean(x^2) + eps) * weight, with no bias and no mean subtraction. HF normalizes in
  float32 whatever the input; here half-precision inputs are raised to float32 too, but a float64 input
  stays float64 so the evaluation is a float64 oracle.
- Rotary embeddings, "rotate half": head dimension hd splits into halves (x1, x2); with
  inv_freq_i = theta^(-2i/hd) for i < hd/2 and angles pos * inv_freq repeated for both halves,
  q' = q cos + (-x2, x1) sin, the same for k; v is not rotated. Positions are absolute (0 = first token).
- Grouped-query attention: num_key_value_heads < num_attention_heads; query head h reads key/value head
  h // (heads / kv_heads). Scores scaled by 1/sqrt(hd), causal, softmax in float32 at least.
- SwiGLU MLP: down_proj(silu(gate_proj(x)) * up_proj(x)).
- Block: x += o_proj(attention(input_layernorm(x))); x += mlp(post_attention_layernorm(x)).
- No biases anywhere, no position embedding table, final model.norm, an untied lm_head.
nn.Linear keeps weights as [out, in], the layout HF's Llama checkpoints store, so export copies them.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from hub import scatter_rows

N_VOCAB = 32000
BOS, EOS = 1, 2


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float() if dt in (torch.float16, torch.bfloat16) else x
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, d, n_head, n_kv):
        super().__init__()
        self.n_head, self.n_kv, self.hd = n_head, n_kv, d // n_head
        self.q_proj = nn.Linear(d, n_head * self.hd, bias=False)
        self.k_proj = nn.Linear(d, n_kv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, n_kv * self.hd, bias=False)
        self.o_proj = nn.Linear(n_head * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_head, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.n_head // self.n_kv  # kv head j serves query heads j*rep .. j*rep+rep-1
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
        att = att.masked_fill(mask[:t, :t], float("-inf"))
        att = att.softmax(dim=-1, dtype=torch.float64 if att.dtype == torch.float64 else torch.float32)
        y = (att.to(v.dtype) @ v).transpose(1, 2).reshape(b, t, self.n_head * self.hd)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, d, d_ff):
        super().__init__()
        self.gate_proj = nn.Linear(d, d_ff, bias=False)
        self.up_proj = nn.Linear(d, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, d, n_head, n_kv, d_ff, eps):
        super().__init__()
        self.self_attn = Attention(d, n_head, n_kv)
        self.mlp = MLP(d, d_ff)
        self.input_layernorm = RMSNorm(d, eps)
        self.post_attention_layernorm = RMSNorm(d, eps)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, n_vocab, n_layer, d, n_head, n_kv, d_ff, n_ctx, theta=10000.0, eps=1e-5):
        super().__init__()
        self.n_ctx, self.theta, self.hd = n_ctx, theta, d // n_head
        self.model = nn.Module()  # HF's names: model.embed_tokens, model.layers.N..., model.norm, lm_head
        self.model.embed_tokens = nn.Embedding(n_vocab, d)
        self.model.layers = nn.ModuleList(Layer(d, n_head, n_kv, d_ff, eps) for _ in range(n_layer))
        self.model.norm = RMSNorm(d, eps)
        self.lm_head = nn.Linear(d, n_vocab, bias=False)
        self.register_buffer("mask", torch.triu(torch.ones(n_ctx, n_ctx, dtype=torch.bool), 1),
                             persistent=False)

    def rotary(self, t, dtype):
        """cos, sin of the rotary angles at positions 0..t-1, [t, hd], in float64 for a float64 model"""
        ft = torch.float64 if dtype == torch.float64 else torch.float32
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=ft) / self.hd))
        ang = torch.outer(torch.arange(t, dtype=ft), inv_freq)
        ang = torch.cat((ang, ang), dim=-1)
        return ang.cos(), ang.sin()

    def hidden(self, idx, patch=None):
        """Residual stream after every block, before model.norm: list of [b, t, d], one per layer.
        patch=(layer, pos, vec) overwrites the output of block `layer` at `pos` of every row with vec."""
        x = self.model.embed_tokens(idx)
        cos, sin = self.rotary(idx.shape[1], self.lm_head.weight.dtype)
        hs = []
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, self.mask)
            if patch is not None and patch[0] == i:
                x = x.clone()
                x[:, patch[1]] = patch[2]
            hs.append(x)
        return hs

    def logits(self, h):
        return self.lm_head(self.model.norm(h))

    def forward(self, idx):
        return self.logits(self.hidden(idx)[-1])

    def token_tables(self):
        """The weights with one row per token: the frozen copy codes go into both (untied)."""
        return [self.model.embed_tokens.weight, self.lm_head.weight]

    def decays(self, name, p):
        return p.dim() == 2 and "embed_tokens" not in name and "lm_head" not in name

    def init_weights(self, seed):
        """HF's init (normal, std 0.02; norms 1), the residual projections scaled down by depth as GPT-2's"""
        g = torch.Generator().manual_seed(seed)
        n_layer = len(self.model.layers)
        for name, p in self.named_parameters():
            with torch.no_grad():
                if "norm" in name:
                    p.fill_(1.0)
                else:
                    std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("o_proj.weight", "down_proj.weight")) \
                        else 0.02
                    p.copy_(torch.randn(p.shape, generator=g) * std)


def build(n_vocab, a):
    """The model for train.py's arguments."""
    return Llama(n_vocab, a.layers, a.d, a.heads, a.kv_heads, a.ffn, a.ctx, a.rope_theta)


def config_json(a):
    """A config.json with the keys of the Hub's Llama checkpoints."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "hidden_act": "silu",
        "hidden_size": a.d,
        "initializer_range": 0.02,
        "intermediate_size": a.ffn,
        "max_position_embeddings": a.ctx,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": a.rope_theta,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": N_VOCAB,
    }


def hf_state(model, row_ids):
    """HF-named tensors of the full model: embed_tokens and lm_head scattered to 32000 rows (unused rows
    zero); every other tensor as it is."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    for k in ("model.embed_tokens.weight", "lm_head.weight"):
        sd[k] = scatter_rows(sd[k], row_ids, N_VOCAB)
    return sd


def from_hf_state(sd, cfg):
    """The model of an HF-named state dict (any dtype) and its config, in float64 for evaluation."""
    d, n_head = cfg["hidden_size"], cfg["num_attention_heads"]
    m = Llama(cfg["vocab_size"], cfg["num_hidden_layers"], d, n_head, cfg["num_key_value_heads"],
              cfg["intermediate_size"], cfg["max_position_embeddings"], cfg["rope_theta"], cfg["rms_norm_eps"])
    m.load_state_dict({k: v.double() for k, v in sd.items()})
    return m.double().eval()
