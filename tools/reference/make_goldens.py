"""Writes tests/data/golden/ from the models build/gen_models writes.

    /usr/bin/python3 tools/reference/make_goldens.py build/models tests/data/golden

(`make goldens` does the same after building gen_models.) Needs torch and numpy, nothing else.
Prompts, layers and positions are fixed below; every float the C tests feed back in (patch.vec,
affine.A, cross.A) is rounded to float32 first and the oracle uses the rounded value.
Before writing anything it checks the oracle against itself (check_oracle) and refuses to write
goldens whose greedy choices or top-1 cells are near-ties a float32 implementation could flip.

Patchscopes goldens (<model>.scope): the source runs on src_ids; h = its value of a site at (source
layer ls, src_pos); the target runs on tgt_ids with the same site at (target layer lt, tgt_pos)
overwritten by f(h); the readout is softmax of the logits at the LAST target position.
  gridA.*, gridB.*   resid_post, every (ls, lt): top_id / top_prob [L_src, L_tgt] (tiny: probs too);
                     tgt_pos = the last position (A) or a middle one (B: later positions recomputed)
  site.<s>.logits    s in resid_pre, attn_out, mlp_out, resid_post at (site.ls, site.lt), tgt_pos last
  unpatched.logits   the target's own last-position logits
  gen.patched        tgt_ids + greedy tokens; resid_post patch (gen.ls, gen.lt) at the last prompt
                     position during the prompt pass only (later tokens see it through the KV cache)
  affine.*           f(x) = [x, 1] @ affine.A, resid_post at (affine.ls, affine.lt), tgt_pos last
  lens.*             softmax(wte @ ln_f(h_l)) of the source at src_pos, per layer (mid: top-1 only)
  cross.A            wide-to-tiny: gridA with f(x) = [x, 1] @ cross.A from wide into tiny
"""
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_ref import GPT2, HOOK_POINTS, argmax, read_safetensors, softmax, write_safetensors  # noqa: E402

MIN_GAP = 1e-2  # smallest top-1/top-2 logit gap allowed where a golden records an argmax

# name: (model path under MODELDIR, prompt ids, patch layer, patch pos, prompt for patch.vec, its pos)
MODELS = {
    "tiny": ("tiny", [17, 83, 5, 42, 0, 95, 61, 29, 77, 8, 50, 33], 0, 5, [3, 70, 44, 91, 12, 58], 4),
    "tiny-f16": ("tiny-f16", [17, 83, 5, 42, 0, 95, 61, 29, 77, 8, 50, 33], 0, 5, [3, 70, 44, 91, 12, 58], 4),
    "tiny-bf16": ("tiny-bf16", [17, 83, 5, 42, 0, 95, 61, 29, 77, 8, 50, 33], 0, 5, [3, 70, 44, 91, 12, 58], 4),
    "mid": ("mid", [464, 3139, 286, 4881, 318, 50256], 1, 2, [40, 1842, 50000, 13], 3),
    "prefix": ("prefix", [199, 12, 150, 77, 0, 103, 45, 188, 9, 66], 0, 4, [5, 160, 33, 120, 87], 2),
    "meta": ("meta.safetensors", [31, 7, 94, 55, 18, 80, 2, 66], 0, 3, [60, 11, 47], 1),
    "wide": ("wide", [64, 3, 88, 21, 47, 90, 12, 70, 36, 1, 59, 25], 1, 6, [81, 6, 39, 72, 15], 3),
    "infer768": ("infer768.safetensors", [40, 3, 63, 17, 0, 52], 0, 2, [9, 58, 30, 21], 3),
}
GEN_PROMPT, GEN_NEW = 4, 8  # gen.ids: ids[:4] and 8 greedy tokens (fewer where n_ctx ends first)

SCOPES = {  # Patchscopes goldens, source = target model unless `cross`
    "tiny": dict(src_ids=[20, 45, 7, 66, 91, 33, 58], tgt_ids=[9, 66, 9, 31, 66, 31, 80, 14, 52], src_pos=3,
                 gridB_pos=3, site=(1, 0), gen=(1, 0), gen_new=6, affine=(1, 0)),
    "mid": dict(src_ids=[32, 7123, 1770, 11, 1119], tgt_ids=[3797, 4613, 9246, 26, 17031, 4613, 30], src_pos=3,
                gridB_pos=3, site=(2, 1), gen=(1, 1), gen_new=6, affine=(1, 0)),
}
CROSS = dict(src="wide", tgt="tiny", src_ids=[5, 77, 30, 91, 12, 64, 48], tgt_ids=[9, 66, 9, 31, 66, 31, 80, 14, 52],
             src_pos=3)


def f32(x):
    """Rounds to float32, as the golden file will hold it, and gives it back as float64."""
    return torch.from_numpy(np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64))


def np32(x):
    return np.asarray(x.detach().numpy() if torch.is_tensor(x) else x, dtype=np.float32)


def ids32(x):
    return np.asarray(x, dtype=np.int32)


def gap(logits):
    top = torch.topk(logits, 2).values
    return float(top[0] - top[1])


class Gaps:
    """The smallest top-1/top-2 gap met anywhere an argmax goes into a golden."""

    def __init__(self):
        self.min, self.where = float("inf"), ""

    def note(self, logits, where):
        g = gap(logits)
        if g < self.min:
            self.min, self.where = g, where
        if g < MIN_GAP:
            raise SystemExit(f"near-tie ({g:.2e}) at {where}: choose other prompts")


GAPS = Gaps()


def greedy(model, ids, n, patches=(), where=""):
    out = list(ids)
    for step in range(n):
        logits, _ = model.run(out, patches)
        GAPS.note(logits[-1], f"{where} step {step}")
        out.append(argmax(logits[-1]))
    return out


# ---------------------------------------------------------------------------------------------
# Patchscopes

def site_value(model, ids, site, layer, pos):
    _, cache = model.run(ids, capture=True)
    return cache[f"{site}.{layer}"][pos]


def scope_logits(tgt, tgt_ids, site, lt, tp, vec):
    """Target logits at the last position with the site at (lt, tp) overwritten by vec."""
    logits, _ = tgt.run(tgt_ids, [(site, lt, tp, vec)])
    return logits[-1]


def grid(src, tgt, src_ids, tgt_ids, src_pos, tp, f=lambda x: x, name=""):
    """Rows: source layers, columns: target layers; resid_post patched at tgt position tp."""
    probs = torch.zeros(src.n_layer, tgt.n_layer, tgt.n_vocab, dtype=torch.float64)
    for ls in range(src.n_layer):
        h = f(site_value(src, src_ids, "resid_post", ls, src_pos))
        for lt in range(tgt.n_layer):
            logits = scope_logits(tgt, tgt_ids, "resid_post", lt, tp, h)
            GAPS.note(logits, f"{name} cell {ls},{lt}")
            probs[ls, lt] = softmax(logits)
    top = probs.max(-1)
    return probs, top.indices, top.values


def affine(x, A):
    return torch.cat([x, torch.ones(1, dtype=torch.float64)]) @ A


def random_affine(seed, c_in, c_out, in_rms, out_rms):
    """[c_in+1, c_out] scaled (by a power of two, so regenerating is stable) so that f(x) has about
    the rms of the target's hidden states."""
    rng = np.random.RandomState(seed)
    A = rng.uniform(-1.0, 1.0, size=(c_in + 1, c_out)) * 2.0 ** round(np.log2(np.sqrt(3.0 / c_in) * out_rms / in_rms))
    A[-1] = rng.uniform(-0.5, 0.5, size=c_out)  # the bias row
    return f32(A)


def rms(x):
    return float(x.pow(2).mean().sqrt())


# ---------------------------------------------------------------------------------------------
# Goldens

def model_golden(models, name):
    path, ids, p_layer, p_pos, alt_ids, alt_pos = MODELS[name]
    m = models[name]
    logits, cache = m.run(ids, capture=True)
    g = {"ids": ids32(ids), "logits": np32(logits)}
    if name != "infer768":  # 768-wide hook points would dwarf the rest; its logits say enough
        for key, val in cache.items():
            g[key] = np32(val)
    n_new = min(GEN_NEW, m.n_ctx - GEN_PROMPT)
    g["gen.ids"] = ids32(greedy(m, ids[:GEN_PROMPT], n_new, where=f"{name} gen"))
    vec = f32(site_value(m, alt_ids, "resid_post", p_layer, alt_pos))
    plog, _ = m.run(ids, [("resid_post", p_layer, p_pos, vec)])
    # the patched row changes, and through attention so does the last one unless no block is left
    reach = -1 if p_layer < m.n_layer - 1 else p_pos
    if (plog[p_pos] - logits[p_pos]).abs().max() < 1e-2 or (plog[reach] - logits[reach]).abs().max() < 1e-2:
        raise SystemExit(f"{name}: the patch changes too little")
    g.update({"patch.vec": np32(vec), "patch.layer": ids32([p_layer]), "patch.pos": ids32([p_pos]),
              "patch.logits": np32(plog[-1:] if name == "mid" else plog)})
    return g


def scope_golden(m, name, cfg):
    src_ids, tgt_ids, sp = cfg["src_ids"], cfg["tgt_ids"], cfg["src_pos"]
    L, last = m.n_layer, len(tgt_ids) - 1
    g = {"src_ids": ids32(src_ids), "tgt_ids": ids32(tgt_ids), "src_pos": ids32([sp])}
    for grid_name, tp in (("gridA", last), ("gridB", cfg["gridB_pos"])):
        probs, top_id, top_prob = grid(m, m, src_ids, tgt_ids, sp, tp, name=f"{name} {grid_name}")
        g.update({f"{grid_name}.tgt_pos": ids32([tp]), f"{grid_name}.top_id": ids32(top_id),
                  f"{grid_name}.top_prob": np32(top_prob)})
        if name == "tiny":
            g[f"{grid_name}.probs"] = np32(probs)
        if grid_name == "gridA":
            grid_a = probs

    ls, lt = cfg["site"]
    for site in ("resid_pre", "attn_out", "mlp_out", "resid_post"):
        g[f"site.{site}.logits"] = np32(scope_logits(m, tgt_ids, site, lt, last, site_value(m, src_ids, site, ls, sp)))
    g.update({"site.ls": ids32([ls]), "site.lt": ids32([lt])})
    unpatched, _ = m.run(tgt_ids)
    g["unpatched.logits"] = np32(unpatched[-1])
    # the resid_post site is one cell of grid A
    assert (softmax(torch.from_numpy(g["site.resid_post.logits"]).double()) - grid_a[ls, lt]).abs().max() < 1e-6

    ls, lt = cfg["gen"]
    vec = site_value(m, src_ids, "resid_post", ls, sp)
    patched = greedy(m, tgt_ids, cfg["gen_new"], [("resid_post", lt, last, vec)], where=f"{name} gen.patched")
    plain = greedy(m, tgt_ids, cfg["gen_new"], where=f"{name} gen unpatched")
    if patched == plain:
        raise SystemExit(f"{name}: the generation patch changes nothing")
    g.update({"gen.patched": ids32(patched), "gen.ls": ids32([ls]), "gen.lt": ids32([lt])})

    ls, lt = cfg["affine"]
    h = site_value(m, src_ids, "resid_post", ls, sp)
    A = random_affine(7, m.n_embd, m.n_embd, rms(h), rms(h))
    g.update({"affine.A": np32(A), "affine.ls": ids32([ls]), "affine.lt": ids32([lt]),
              "affine.logits": np32(scope_logits(m, tgt_ids, "resid_post", lt, last, affine(h, A)))})

    _, cache = m.run(src_ids, capture=True)
    lens = torch.stack([softmax(m.lens(cache[f"resid_post.{l}"][sp])) for l in range(L)])
    if name == "mid":
        g.update({"lens.top_id": ids32(lens.max(-1).indices), "lens.top_prob": np32(lens.max(-1).values)})
    else:
        g["lens.probs"] = np32(lens)
    # lt = L-1 overwrites the last block's output: the target then reads the source's logit lens
    assert (grid_a[:, L - 1] - lens).abs().max() < 1e-12
    return g


def cross_golden(src, tgt):
    c = CROSS
    last = len(c["tgt_ids"]) - 1
    _, sc = src.run(c["src_ids"], capture=True)
    _, tc = tgt.run(c["tgt_ids"], capture=True)
    src_rms = rms(torch.stack([sc[f"resid_post.{l}"] for l in range(src.n_layer)]))
    tgt_rms = rms(torch.stack([tc[f"resid_post.{l}"] for l in range(tgt.n_layer)]))
    A = random_affine(11, src.n_embd, tgt.n_embd, src_rms, tgt_rms)
    probs, top_id, top_prob = grid(src, tgt, c["src_ids"], c["tgt_ids"], c["src_pos"], last,
                                   lambda x: affine(x, A), name="wide-to-tiny gridA")
    return {"src_ids": ids32(c["src_ids"]), "tgt_ids": ids32(c["tgt_ids"]), "src_pos": ids32([c["src_pos"]]),
            "cross.A": np32(A), "gridA.tgt_pos": ids32([last]), "gridA.top_id": ids32(top_id),
            "gridA.top_prob": np32(top_prob), "gridA.probs": np32(probs)}


# ---------------------------------------------------------------------------------------------
# The oracle against itself

def functional_logits(m, ids):
    """The same network through torch's own building blocks, as a second opinion on gpt2_ref."""
    w, T, C, H = m.w, len(ids), m.n_embd, m.n_head
    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    for l in range(m.n_layer):
        p = f"h.{l}."
        a = F.layer_norm(x, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], m.eps)
        q, k, v = F.linear(a, w[p + "attn.c_attn.weight"].T, w[p + "attn.c_attn.bias"]).split(C, -1)
        q, k, v = (t.view(T, H, C // H).permute(1, 0, 2) for t in (q, k, v))
        att = torch.baddbmm(torch.zeros(H, T, T, dtype=x.dtype), q, k.transpose(1, 2), alpha=(C // H) ** -0.5)
        z = F.softmax(att.masked_fill(mask, float("-inf")), -1).bmm(v).permute(1, 0, 2).reshape(T, C)
        x = x + F.linear(z, w[p + "attn.c_proj.weight"].T, w[p + "attn.c_proj.bias"])
        a = F.layer_norm(x, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], m.eps)
        a = F.gelu(F.linear(a, w[p + "mlp.c_fc.weight"].T, w[p + "mlp.c_fc.bias"]), approximate="tanh")
        x = x + F.linear(a, w[p + "mlp.c_proj.weight"].T, w[p + "mlp.c_proj.bias"])
    return F.linear(F.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"], m.eps), w["wte.weight"])


def check_oracle(models, modeldir):
    # gen_models' F16/BF16 rounding agrees with numpy's and torch's round-to-nearest-even
    f32w, _ = read_safetensors(os.path.join(modeldir, "tiny", "model.safetensors"))
    f16w, _ = read_safetensors(os.path.join(modeldir, "tiny-f16", "model.safetensors"))
    bf16w, _ = read_safetensors(os.path.join(modeldir, "tiny-bf16", "model.safetensors"))
    for k, h in f16w.items():
        if h.dtype != np.float16:
            continue  # the F32 mask buffers
        a = f32w[k]
        assert np.array_equal(a.astype(np.float16).view(np.uint16), h.view(np.uint16)), k
        assert np.array_equal(torch.from_numpy(a.copy()).to(torch.bfloat16).float().numpy(), bf16w[k]), k
        assert np.array_equal(a.astype(np.float64) * 2 ** 20, np.round(a.astype(np.float64) * 2 ** 20)), k
    # the layouts the loaders must cope with are really there
    with open(os.path.join(modeldir, "prefix", "model.safetensors"), "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    offsets = [v["data_offsets"][0] for k, v in header.items() if k != "__metadata__"]
    assert offsets != sorted(offsets) and "lm_head.weight" in header and "transformer.wte.weight" in header
    assert read_safetensors(os.path.join(modeldir, "meta.safetensors"))[1] == {"format": "pt", "n_head": "4"}
    assert read_safetensors(os.path.join(modeldir, "infer768.safetensors"))[1] == {}
    assert not os.path.exists(os.path.join(modeldir, "config.json"))
    # heads, eps and layers came from config.json, metadata and width
    shapes = {n: (m.n_layer, m.n_embd, m.n_head, m.n_vocab, m.n_ctx, m.eps) for n, m in models.items()}
    assert shapes["tiny"] == (2, 32, 2, 96, 32, 1e-5) and shapes["mid"] == (3, 64, 4, 50257, 64, 1e-5)
    assert shapes["prefix"] == (2, 48, 3, 200, 24, 1e-3) and shapes["meta"] == (2, 32, 4, 96, 16, 1e-5)
    assert shapes["wide"] == (3, 48, 4, 96, 32, 1e-5) and shapes["infer768"] == (1, 768, 12, 64, 8, 1e-5)

    for name, m in models.items():
        ids = MODELS[name][1]
        logits, cache = m.run(ids, capture=True)
        assert (logits - functional_logits(m, ids)).abs().max() < 1e-10, name
        # causal: a prefix of the prompt gives the same rows
        assert (m.run(ids[:3])[0] - logits[:3]).abs().max() < 1e-12, name
        for l in range(m.n_layer):
            p = cache[f"pattern.{l}"]
            assert (p.sum(-1) - 1).abs().max() < 1e-12 and p.transpose(0, 1).triu(1).abs().max() == 0, name
            peak = float(p[len(ids) // 2:].max(-1).values.mean())
            assert 0.3 < peak < 0.9, f"{name}: attention is uniform or one-hot ({peak:.2f})"
            # writing any hook point back with its own value changes nothing; a different value does
            for point in HOOK_POINTS:
                pos = len(ids) // 2
                same, _ = m.run(ids, [(point, l, pos, cache[f"{point}.{l}"][pos])])
                assert (same - logits).abs().max() < 1e-12, (name, point, l)
                other, _ = m.run(ids, [(point, l, pos, cache[f"{point}.{l}"][pos - 1])])
                assert (other[pos] - logits[pos]).abs().max() > 1e-6, (name, point, l)
        # the logit lens of the last block is the model's own output
        last = m.lens(cache[f"resid_post.{m.n_layer - 1}"])
        assert (last - logits).abs().max() < 1e-12, name
        assert logits.std() > 1.0, f"{name}: logits barely spread"
    for low, bound in (("tiny-f16", 0.05), ("tiny-bf16", 0.5)):  # 11 and 8 significant bits
        ids = MODELS["tiny"][1]
        d = float((models[low].run(ids)[0] - models["tiny"].run(ids)[0]).abs().max())
        assert 1e-5 < d < bound, (low, d)
        print(f"  {low} logits vs tiny: max |diff| {d:.2e}")


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: make_goldens.py MODELDIR OUTDIR")
    modeldir, outdir = sys.argv[1], sys.argv[2]
    t0 = time.time()
    torch.set_num_threads(1)  # the grids are tiny; threads only add noise on a shared machine
    models = {name: GPT2(os.path.join(modeldir, spec[0])) for name, spec in MODELS.items()}
    check_oracle(models, modeldir)
    print(f"  oracle self-checks passed ({time.time() - t0:.1f} s)")

    goldens = {name: model_golden(models, name) for name in MODELS}
    for name, cfg in SCOPES.items():
        goldens[f"{name}.scope"] = scope_golden(models[name], name, cfg)
    goldens["wide-to-tiny.scope"] = cross_golden(models[CROSS["src"]], models[CROSS["tgt"]])

    os.makedirs(outdir, exist_ok=True)
    total = 0
    for name, g in goldens.items():
        path = os.path.join(outdir, name + ".safetensors")
        write_safetensors(path, g, {"generator": "tools/reference/make_goldens.py"})
        total += os.path.getsize(path)
    print(f"  {len(goldens)} goldens, {total / 1e6:.2f} MB in {outdir}; smallest argmax gap {GAPS.min:.3g} "
          f"({GAPS.where}); {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
