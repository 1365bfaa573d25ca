"""Writes tests/data/golden/interv.safetensors: the interventions (activation patching, ablation,
steering, sparse autoencoders) computed by the float64 oracle, one full run per cell.

    /usr/bin/python3 tools/reference/make_interv_goldens.py build/models tests/data/golden

Activation patching (<model>.ap.*): clean and corrupted ids of equal length; for each site, cell
(layer, position) runs the corrupted ids with the site's row at that position set to the clean
run's, cell (layer, head) sets one head's columns (pattern: one head's [query, key] slice) at every
position; each run is read as logit[answer] - logit[wrong] at the last position.

Ablation (tiny.ab.*): logits of every position of AB_IDS with one point overwritten: the mean of
mlp_out.1 over AB_MEAN_PROMPTS per position (mean_pos) and over every position (mean_all), zeros in
head 1 of z.0 (zero_head), zeros in units AB_UNITS of mlp_post.1 (zero_units), attn_out.0 of
AB_RESAMPLE (resample), zeros in head 0 of pattern.1 (zero_pattern).
Steering (tiny.steer.*): scale * vec added to resid_post.0 at every position (all) or at positions
>= the prompt's length (new); greedy ids of STEER_NEW tokens after STEER_IDS, and the prompt's logits.
Steering vectors (tiny.cv.*): from the contrastive pairs CV_PAIRS, per layer the unit mean difference
and the unit first principal component of the differences (see steering_vector_goldens).
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


AB_IDS = [9, 66, 9, 31, 66, 31, 80, 14]
AB_MEAN_PROMPTS = [[20, 45, 7, 66, 91, 33, 58, 2, 40], [3, 70, 44, 91, 12], [17, 83, 5, 42, 0, 95, 61, 29]]
AB_UNITS = [3, 17, 60, 100]
AB_RESAMPLE = [64, 3, 88, 21, 47, 90, 12, 70, 36]
STEER_IDS, STEER_NEW, STEER_SCALE = [17, 83, 5, 42], 6, 4.0
CV_PAIRS = [([20, 45, 7, 66], [20, 45, 7, 12]), ([3, 70, 44, 91, 66], [3, 70, 44, 91, 12]), ([9, 66], [9, 12, 5]),
            ([17, 83, 66, 61], [17, 83, 12, 61]), ([40, 8, 66], [40, 8, 12]), ([31, 66, 50, 66], [31, 12, 50, 12, 1])]
MIN_GAP = 1e-2


def overwrite(point, layer, f):
    """A hook replacing the value of (point, layer) by f(value)."""
    def hook(p, l, x):
        return f(x.clone()) if p == point and l == layer else None
    return hook


def ablation_goldens(m, g):
    d = m.n_embd // m.n_head
    caches = [m.run(ids, capture=True)[1]["mlp_out.1"] for ids in AB_MEAN_PROMPTS]
    longest = max(len(ids) for ids in AB_MEAN_PROMPTS)
    per_pos = torch.stack([torch.stack([c[p] for c in caches if p < len(c)]).mean(0) for p in range(longest)])
    every = torch.cat(caches).mean(0)
    resample = m.run(AB_RESAMPLE, capture=True)[1]["attn_out.0"]

    def set_rows(x, rows):
        x[:] = rows[:len(x)]
        return x

    def zero_cols(x, lo, hi):
        x[:, lo:hi] = 0
        return x

    def zero_units(x):
        x[:, AB_UNITS] = 0
        return x

    def zero_pattern_head(x):
        x[:, 0, :] = 0
        return x

    cases = {
        "mean_pos": ("mlp_out", 1, lambda x: set_rows(x, per_pos)),
        "mean_all": ("mlp_out", 1, lambda x: set_rows(x, every.expand(len(x), -1))),
        "zero_head": ("z", 0, lambda x: zero_cols(x, d, 2 * d)),
        "zero_units": ("mlp_post", 1, zero_units),
        "resample": ("attn_out", 0, lambda x: set_rows(x, resample)),
        "zero_pattern": ("pattern", 1, zero_pattern_head),
    }
    plain = m.forward(AB_IDS)
    for name, (point, layer, f) in cases.items():
        logits = m.forward(AB_IDS, overwrite(point, layer, f))
        assert (logits - plain).abs().max() > 1e-3, name  # every ablation changes something
        g[f"tiny.ab.{name}"] = logits.numpy().astype(np.float32)
    g["tiny.ab.ids"] = np.asarray(AB_IDS, dtype=np.int32)


def steering_goldens(m, g):
    rng = np.random.RandomState(7)
    vec = torch.from_numpy(rng.standard_normal(m.n_embd).astype(np.float32).astype(np.float64))
    g["tiny.steer.vec"] = vec.numpy().astype(np.float32)
    for name, start in (("all", 0), ("new", len(STEER_IDS))):
        def add(x, start=start):
            x[start:] += STEER_SCALE * vec
            return x
        hook = overwrite("resid_post", 0, add)
        ids = list(STEER_IDS)
        for _ in range(STEER_NEW):
            logits = m.forward(ids, hook)
            top = torch.topk(logits[-1], 2).values
            assert float(top[0] - top[1]) > MIN_GAP, (name, ids)
            ids.append(int(torch.argmax(logits[-1])))
        g[f"tiny.steer.{name}.ids"] = np.asarray(ids, dtype=np.int32)
        g[f"tiny.steer.{name}.logits"] = m.forward(STEER_IDS, hook).numpy().astype(np.float32)
    plain = list(STEER_IDS)
    for _ in range(STEER_NEW):
        plain.append(int(torch.argmax(m.forward(plain)[-1])))
    assert plain != list(g["tiny.steer.all.ids"]), "the steering changes nothing"


def steering_vector_goldens(m, g):
    """tiny.cv.mean, tiny.cv.pca [L, C]: per layer the unit mean of d_i = h(pos_i) - h(neg_i) (resid_post at
    each prompt's last token), and the unit top eigenvector of sum d_i d_i' signed along the mean"""
    D = torch.stack([torch.stack([m.run(p, capture=True)[1][f"resid_post.{l}"][-1] -
                                  m.run(q, capture=True)[1][f"resid_post.{l}"][-1] for p, q in CV_PAIRS])
                     for l in range(m.n_layer)])  # [L, pairs, C]
    mean, pca = [], []
    for l in range(m.n_layer):
        mu = D[l].mean(0)
        mean.append(mu / mu.norm())
        vals, vecs = torch.linalg.eigh(D[l].T @ D[l])
        assert float(vals[-2] / vals[-1]) < 0.8, "a clear first component (power iteration converges, float32 cannot move it)"
        v = vecs[:, -1]
        pca.append(v if float(v @ D[l].sum(0)) >= 0 else -v)
    g["tiny.cv.mean"] = torch.stack(mean).numpy().astype(np.float32)
    g["tiny.cv.pca"] = torch.stack(pca).numpy().astype(np.float32)
    g["tiny.cv.pos"] = np.asarray([t for p, _ in CV_PAIRS for t in p], dtype=np.int32)
    g["tiny.cv.neg"] = np.asarray([t for _, q in CV_PAIRS for t in q], dtype=np.int32)
    g["tiny.cv.pos_len"] = np.asarray([len(p) for p, _ in CV_PAIRS], dtype=np.int32)
    g["tiny.cv.neg_len"] = np.asarray([len(q) for _, q in CV_PAIRS], dtype=np.int32)


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
    tiny = GPT2(os.path.join(modeldir, "tiny"))
    ablation_goldens(tiny, g)
    steering_goldens(tiny, g)
    steering_vector_goldens(tiny, g)
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "interv.safetensors")
    write_safetensors(path, g, {"generator": "tools/reference/make_interv_goldens.py"})
    print(f"  interventions golden: {len(g)} tensors, {os.path.getsize(path) / 1e3:.1f} kB in {path}")


if __name__ == "__main__":
    main()
