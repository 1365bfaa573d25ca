"""GPT-2 in plain PyTorch, with HF parameter names (the model of weights/tiny).

The architecture is GPT-2's exactly, so patchscope.h runs the exported file unchanged: pre-LayerNorm blocks
(eps 1e-5), fused qkv projection, GELU with the tanh approximation, learned positional embeddings, biases on
every linear layer and LayerNorm, and the unembedding tied to wte. PyTorch keeps Linear weights as [out, in];
GPT-2's Conv1D stores [in, out], so export transposes them (see CONV1D).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from hub import scatter_rows

N_VOCAB = 50257
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


class Block(nn.Module):
    def __init__(self, d, n_head, eps):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(d, 3 * d)
        self.attn.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(d, 4 * d)
        self.mlp.c_proj = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        hd = d // self.n_head
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(mask[:t, :t], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.attn.c_proj(y)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, n_vocab, n_layer, d, n_head, n_ctx, eps=1e-5):
        super().__init__()
        self.n_ctx = n_ctx
        self.wte = nn.Embedding(n_vocab, d)
        self.wpe = nn.Embedding(n_ctx, d)
        self.h = nn.ModuleList(Block(d, n_head, eps) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d, eps=eps)
        self.register_buffer("mask", torch.triu(torch.ones(n_ctx, n_ctx, dtype=torch.bool), 1),
                             persistent=False)

    def hidden(self, idx, patch=None):
        """Residual stream after every block, before ln_f: list of [b, t, d], one per layer.
        patch=(layer, pos, vec) overwrites the output of block `layer` at `pos` of every row with vec."""
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        hs = []
        for i, blk in enumerate(self.h):
            x = blk(x, self.mask)
            if patch is not None and patch[0] == i:
                x = x.clone()
                x[:, patch[1]] = patch[2]
            hs.append(x)
        return hs

    def token_tables(self):
        """The weights with one row per token: the frozen copy codes go there (tied: one table)."""
        return [self.wte.weight]

    def decays(self, name, p):
        return p.dim() == 2 and not name.startswith("w")  # matrices but wte and wpe

    def init_weights(self, seed):
        g = torch.Generator().manual_seed(seed)
        n_layer = len(self.h)
        for name, p in self.named_parameters():
            with torch.no_grad():
                if "ln_" in name:
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:  # GPT-2's init: residual projections scaled down by depth
                    std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
                    p.copy_(torch.randn(p.shape, generator=g) * std)

    def logits(self, h):
        return self.ln_f(h) @ self.wte.weight.T

    def forward(self, idx):
        return self.logits(self.hidden(idx)[-1])


def build(n_vocab, a):
    """The model for train.py's arguments."""
    return GPT2(n_vocab, a.layers, a.d, a.heads, a.ctx)


def config_json(a):
    """A config.json shaped like the one of the released gpt2 checkpoints."""
    n_layer, d, n_head, n_ctx = a.layers, a.d, a.heads, a.ctx
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.0,
        "bos_token_id": 50256,
        "embd_pdrop": 0.0,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": n_ctx,
        "n_embd": d,
        "n_head": n_head,
        "n_inner": None,
        "n_layer": n_layer,
        "n_positions": n_ctx,
        "resid_pdrop": 0.0,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "vocab_size": N_VOCAB,
    }


def hf_state(model, row_ids):
    """HF-named tensors of the full model: wte scattered to 50257 rows (unused rows zero), Conv1D layout."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    sd["wte.weight"] = scatter_rows(sd["wte.weight"], row_ids, N_VOCAB)
    for k in sd:
        if k.endswith(CONV1D):
            sd[k] = sd[k].T.contiguous()
    return sd


def from_hf_state(sd, cfg):
    """The model of an HF-named state dict (any dtype) and its config, in float64 for evaluation."""
    n_head = cfg["n_head"]
    n_layer = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("h."))
    n_vocab, d = sd["wte.weight"].shape
    m = GPT2(n_vocab, n_layer, d, n_head, sd["wpe.weight"].shape[0])
    m.load_state_dict({k: (v.T if k.endswith(CONV1D) else v).double() for k, v in sd.items()})
    return m.double().eval()
