"""Writes tests/data/golden/interv.safetensors: the interventions (activation patching, ablation,
steering, sparse autoencoders) computed by the float64 oracle, one full run per cell.

    /usr/bin/python3 tools/reference/make_interv_goldens.py build/models tests/data/golden

Activation patching (<model>.ap.*): clean and corrupted ids of equal length; for each site, cell
(layer, position) runs the corrupted ids with the site's row at that position set to the clean
run's, cell (layer, head) sets one head's columns (pattern: one head's [query, key] slice) at every
position; each run is read as logit[answer] - logit[wrong] at the last position.
"""
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_ref import GPT2, write_safetensors  # noqa: E402

AP = {  # model: (clean ids, corrupted ids, answer, wrong)
    "tiny": ([17, 83, 5, 42, 0, 95, 61], [17, 83, 70, 42, 0, 95, 61], 29, 50),
    "mid": ([464, 3139, 286, 4881, 318], [464, 3139, 286, 12873, 318], 6342, 21796),
}
AP_SITES = ("resid_pre", "attn_out", "mlp_out", "resid_post", "v", "pattern")  # by (layer, position)
AP_HEAD_SITES = ("q", "k", "v", "z", "pattern")                                  # by (layer, head)


def logit_diff(logits, answer, wrong):
    return float(logits[-1, answer] - logits[-1, wrong])


def patching(m, clean, corrupted, answer, wrong, site, per_head):
    _, cache = m.run(clean, capture=True)
    d = m.n_embd // m.n_head
    cols = m.n_head if per_head else len(clean)
    out = np.zeros((m.n_layer, cols), dtype=np.float64)
    for layer in range(m.n_layer):
        want = cache[f"{site}.{layer}"]
        for j in range(cols):
            def hook(point, l, x, layer=layer, j=j, want=want):
                if point != site or l != layer:
                    return None
                x = x.clone()
                if not per_head:
                    x[j] = want[j]
                elif site == "pattern":
                    x[:, j, :] = want[:, j, :]
                else:
                    x[:, j * d:(j + 1) * d] = want[:, j * d:(j + 1) * d]
                return x
            out[layer, j] = logit_diff(m.forward(corrupted, hook), answer, wrong)
    return out


def main():
    modeldir, outdir = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    g = {}
    for name, (clean, corrupted, answer, wrong) in AP.items():
        m = GPT2(os.path.join(modeldir, name))
        g[f"{name}.ap.clean"] = np.asarray(clean, dtype=np.int32)
        g[f"{name}.ap.corrupted"] = np.asarray(corrupted, dtype=np.int32)
        g[f"{name}.ap.tokens"] = np.asarray([answer, wrong], dtype=np.int32)
        g[f"{name}.ap.ends"] = np.asarray([logit_diff(m.run(clean)[0], answer, wrong),
                                           logit_diff(m.run(corrupted)[0], answer, wrong)], dtype=np.float32)
        assert abs(g[f"{name}.ap.ends"][0] - g[f"{name}.ap.ends"][1]) > 0.5, name  # a metric worth normalising
        for site in AP_SITES:
            g[f"{name}.ap.pos.{site}"] = patching(m, clean, corrupted, answer, wrong, site, False).astype(np.float32)
        for site in AP_HEAD_SITES:
            g[f"{name}.ap.head.{site}"] = patching(m, clean, corrupted, answer, wrong, site, True).astype(np.float32)
        # self-checks: the last layer's resid_post at the last position is the clean run; a position
        # the prompts share changes nothing at resid_pre of layer 0
        last = g[f"{name}.ap.pos.resid_post"][-1, -1]
        assert abs(last - g[f"{name}.ap.ends"][0]) < 1e-4, (name, last)
        assert abs(g[f"{name}.ap.pos.resid_pre"][0, 0] - g[f"{name}.ap.ends"][1]) < 1e-4, name
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "interv.safetensors")
    write_safetensors(path, g, {"generator": "tools/reference/make_interv_goldens.py"})
    print(f"  interventions golden: {len(g)} tensors, {os.path.getsize(path) / 1e3:.1f} kB in {path}")


if __name__ == "__main__":
    main()
