"""Writes sparse autoencoders in SAELens' layout (tests/data/sae/<name>/: cfg.json and
sae_weights.safetensors, random weights) for build/models/tiny, and what the float64 oracle says
they do (tests/data/golden/sae.safetensors).

    /usr/bin/python3 tools/reference/make_sae_goldens.py build/models tests/data/sae tests/data/golden

The SAEs, each exercising a part of SAELens' definition (sae_lens/saes/*.py):

  relu_resid_pre     standard (ReLU), SAELens 6's cfg.json, blocks.1.hook_resid_pre, F32
  topk_z             topk k=6, rescale_acts_by_decoder_norm, constant_norm_rescale, blocks.0.attn.hook_z, BF16
  jumprelu_mlp_out   jumprelu (threshold), apply_b_dec_to_input false, layer_norm, blocks.1.hook_mlp_out, F16
  legacy_topk        a cfg.json from before SAELens 6: hook_name at the top, activation_fn_str "topk",
                     activation_fn_kwargs.k 4, normalize_activations false; blocks.0.hook_resid_post

For each, on the prompt IDS (<name>.*):
  acts      [T, d_sae] feature activations of the hook's input at every position
  recon     [T, d_in] the reconstruction (normalization undone)
  splice    [V] last-position logits with the reconstruction written in
  edit      [V] last-position logits with the reconstruction plus the error term (x - reconstruction),
            feature EDIT[0] set to EDIT_VALUE and EDIT[1] set to 0 (SAELens' use_error_term: the error is
            that of the unedited activations)
and `ids`. No pre-activation is within 1e-3 of 0 or of its threshold, nor the k-th largest within 1e-3
of the next, so a float32 implementation cannot switch a feature; the seed is drawn again until so.
"""
import json
import os
import sys
import zlib

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families_ref import stored, write_st  # noqa: E402
from gpt2_ref import GPT2, write_safetensors  # noqa: E402

IDS = [17, 83, 5, 42, 0, 95, 61, 29, 77]
EDIT, EDIT_VALUE = (3, 7), 2.5
MARGIN = 1e-3

SAES = {  # name: (point, layer, d_sae, architecture, extra config, dtype, v6 config)
    "relu_resid_pre": ("resid_pre", 1, 64, "standard", {}, "F32", True),
    "topk_z": ("z", 0, 48, "topk", {"k": 6, "rescale_acts_by_decoder_norm": True,
                                    "normalize_activations": "constant_norm_rescale"}, "BF16", True),
    "jumprelu_mlp_out": ("mlp_out", 1, 40, "jumprelu", {"apply_b_dec_to_input": False,
                                                        "normalize_activations": "layer_norm"}, "F16", True),
    "legacy_topk": ("resid_post", 0, 32, "topk", {"k": 4}, "F32", False),
}
TL_NAMES = {"resid_pre": "hook_resid_pre", "resid_post": "hook_resid_post", "mlp_out": "hook_mlp_out", "z": "attn.hook_z"}


class SAE:
    """SAELens' inference SAE, in float64"""

    def __init__(self, W, cfg):
        self.W = {k: torch.tensor(v, dtype=torch.float64) for k, v in W.items()}
        self.arch, self.cfg = cfg["architecture"], cfg

    def norm_in(self, x):
        mode, d = self.cfg.get("normalize_activations", "none"), x.shape[-1]
        if mode == "constant_norm_rescale":
            c = d ** 0.5 / x.norm(dim=-1, keepdim=True)
            return x * c, lambda y: y / c
        if mode == "layer_norm":
            mu = x.mean(-1, keepdim=True)
            std = (x - mu).std(-1, keepdim=True)  # unbiased, as torch.std is
            return (x - mu) / (std + 1e-5), lambda y: y * std + mu
        return x, lambda y: y

    def pre(self, x):
        xn, back = self.norm_in(x)
        sae_in = xn - self.W["b_dec"] * self.cfg.get("apply_b_dec_to_input", True)
        pre = sae_in @ self.W["W_enc"] + self.W["b_enc"]
        if self.cfg.get("rescale_acts_by_decoder_norm"):
            pre = pre * self.W["W_dec"].norm(dim=-1)
        return pre, back

    def acts(self, pre):
        if self.arch == "topk":
            vals, idx = torch.topk(pre, self.cfg["k"], dim=-1)
            return torch.zeros_like(pre).scatter(-1, idx, vals.relu())
        a = pre.relu()
        return a * (pre > self.W["threshold"]) if self.arch == "jumprelu" else a

    def decode(self, acts, back):
        if self.cfg.get("rescale_acts_by_decoder_norm"):
            acts = acts / self.W["W_dec"].norm(dim=-1)
        return back(acts @ self.W["W_dec"] + self.W["b_dec"])

    def margin(self, pre):
        """how close a feature comes to switching: to 0, the threshold, the k-th/(k+1)-th boundary"""
        m = float(pre.abs().min())
        if self.arch == "jumprelu":
            m = min(m, float((pre - self.W["threshold"]).abs().min()))
        if self.arch == "topk":
            s = torch.sort(pre, -1, descending=True).values
            k = self.cfg["k"]
            m = min(float((s[:, k - 1] - s[:, k]).min()), float(s[:, :k].abs().min()))
        return m


def config(name, point, layer, d_in, d_sae, arch, extra, dtype, v6):
    hook = f"blocks.{layer}.{TL_NAMES[point]}"
    if v6:
        cfg = {"d_in": d_in, "d_sae": d_sae, "dtype": {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[dtype],
               "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
               "reshape_activations": "hook_z" if point == "z" else "none",
               "metadata": {"sae_lens_version": "6.18.0", "sae_lens_training_version": "6.18.0",
                            "model_name": "tiny", "hook_name": hook, "hook_head_index": None, "prepend_bos": False,
                            "dataset_path": "random", "context_size": 32},
               "architecture": arch}
        cfg.update(extra)
        return cfg, dict(cfg)
    # before SAELens 6: a flat config; what it means in SAELens 6's terms is the second dict
    old = {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
           "model_name": "tiny", "hook_name": hook, "hook_layer": layer, "hook_head_index": None,
           "activation_fn_str": "topk", "activation_fn_kwargs": {"k": extra["k"]}, "apply_b_dec_to_input": True,
           "finetuning_scaling_factor": False, "context_size": 32, "dataset_path": "random", "prepend_bos": False,
           "normalize_activations": False, "sae_lens_training_version": "3.13.0"}
    return old, {"architecture": "topk", "k": extra["k"], "apply_b_dec_to_input": True, "normalize_activations": "none"}


def weights(rng, d_in, d_sae, arch, scale):
    W = {"W_enc": rng.standard_normal((d_in, d_sae)) / np.sqrt(d_in) / scale,
         "b_enc": rng.uniform(-0.6, 0.1, d_sae),
         "W_dec": rng.standard_normal((d_sae, d_in)) * scale / np.sqrt(d_sae) * 3,
         "b_dec": rng.standard_normal(d_in) * scale * 0.2}
    if arch == "jumprelu":
        W["threshold"] = rng.uniform(0.05, 0.4, d_sae)
    return W


def main():
    modeldir, saedir, goldendir = sys.argv[1:4]
    torch.set_num_threads(1)
    m = GPT2(os.path.join(modeldir, "tiny"))
    _, cache = m.run(IDS, capture=True)
    out = {}
    for name, (point, layer, d_sae, arch, extra, dtype, v6) in SAES.items():
        x = cache[f"{point}.{layer}"]
        d_in = x.shape[-1]
        scale = float(x.std())
        file_cfg, cfg = config(name, point, layer, d_in, d_sae, arch, extra, dtype, v6)
        for seed in range(100):
            rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
            W = {k: stored(v, dtype) for k, v in weights(rng, d_in, d_sae, arch, scale).items()}
            sae = SAE(W, cfg)
            pre, back = sae.pre(x)
            acts = sae.acts(pre)
            active = (acts > 0).sum(-1)
            if sae.margin(pre) > MARGIN and int(active.min()) >= 2 and int(active.max()) < d_sae // 2:
                break
        else:
            raise SystemExit(f"{name}: no seed gives features clear of their switching points")
        recon = sae.decode(acts, back)

        def splice(error, edits):
            def hook(p, l, v):
                if p != point or l != layer:
                    return None
                pr, bk = sae.pre(v)
                a = sae.acts(pr)
                clean = sae.decode(a, bk)
                a = a.clone()
                for f, val in edits:
                    a[:, f] = val
                r = sae.decode(a, bk)
                return r + (v - clean) if error else r
            return m.forward(IDS, hook)[-1]

        edited = splice(True, [(EDIT[0], EDIT_VALUE), (EDIT[1], 0.0)])
        assert float((splice(True, []) - m.forward(IDS)[-1]).abs().max()) < 1e-9, "the error term restores the run"
        assert float((edited - m.forward(IDS)[-1]).abs().max()) > 1e-3, f"{name}: the edit changes the logits"
        os.makedirs(os.path.join(saedir, name), exist_ok=True)
        with open(os.path.join(saedir, name, "cfg.json"), "w") as f:
            json.dump(file_cfg, f, indent=2)
            f.write("\n")
        write_st(os.path.join(saedir, name, "sae_weights.safetensors"), W, dtype)
        out.update({f"{name}.acts": acts.numpy().astype(np.float32), f"{name}.recon": recon.numpy().astype(np.float32),
                    f"{name}.splice": splice(False, []).numpy().astype(np.float32),
                    f"{name}.edit": edited.numpy().astype(np.float32)})
        print(f"  {name}: seed {seed}, {d_in} -> {d_sae}, active per position {active.tolist()}, "
              f"margin {sae.margin(pre):.2e}")
    out["ids"] = np.array(IDS, dtype=np.int32)
    write_safetensors(os.path.join(goldendir, "sae.safetensors"), out)


if __name__ == "__main__":
    main()
