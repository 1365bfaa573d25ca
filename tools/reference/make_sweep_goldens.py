"""Writes tests/data/sweep/: a job file for `patchscope sweep` and what the oracle says each cell reads.

    /usr/bin/python3 tools/reference/make_sweep_goldens.py build/models tests/data/sweep

Twenty cases on build/models/tiny (2 layers, vocabulary 96) with token ids, drawn from a fixed seed:
prompts of 4-12 tokens, source and target positions from either end, the sites resid_post, resid_pre,
attn_out, mlp_out and q, layers as ranges, lists out of order, single numbers and "same", greedy
generation, and four cases whose source is build/models/wide (48 wide) through an affine map
(wide-to-tiny.f32, (48 + 1) x 32 little-endian floats). Each cell is computed from scratch: the source
runs, its site at (source layer, source position) is taken (mapped), the target runs with the site at
(target layer, target position) overwritten, and the readout is the softmax at the last target
position; generation reruns the whole text with the same overwrite for every new token.

  jobs.jsonl       the cases, as the sweep reads them
  expected.jsonl   one line per cell, in the sweep's order: id, source_layer, target_layer, top_id,
                   top_prob (and generated_ids)

A drawn case whose top-1 or any greedy choice is a near-tie (logit gap under 1e-2) is drawn again.
"""
import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_ref import GPT2, argmax, softmax  # noqa: E402
from make_goldens import MIN_GAP, gap, random_affine, rms  # noqa: E402

SITES = ("resid_post", "resid_pre", "attn_out", "mlp_out", "q")
N_CASES, N_CROSS = 20, 4


def layer_list(spec, L):
    if spec is None:
        return list(range(L))
    if isinstance(spec, int):
        return [spec]
    if isinstance(spec, list):
        return spec
    a, _, b = spec.partition("-")
    return list(range(int(a), int(b or a) + 1))


def cells(case, src, tgt, A):
    """The case's cells in the sweep's order, or None when one is a near-tie."""
    site, n_new = case.get("site", "resid_post"), case.get("n_new", 0)
    src_ids, tgt_ids = case["source_ids"], case["target_ids"]
    sp, tp = case["source_pos"] % len(src_ids), case["target_pos"] % len(tgt_ids)
    _, cache = src.run(src_ids, capture=True)
    sl = layer_list(case.get("source_layers"), src.n_layer)
    same = case.get("target_layers") == "same"
    out = []
    for ls in sl:
        h = cache[f"{site}.{ls}"][sp]
        if A is not None:
            h = torch.cat([h, torch.ones(1, dtype=torch.float64)]) @ A
        for lt in [ls] if same else layer_list(case.get("target_layers"), tgt.n_layer):
            logits, _ = tgt.run(tgt_ids, [(site, lt, tp, h)])
            if gap(logits[-1]) < MIN_GAP:
                return None
            probs = softmax(logits[-1])
            cell = {"id": case["id"], "source_layer": ls, "target_layer": lt, "top_id": int(argmax(probs)),
                    "top_prob": float(probs.max())}
            if n_new:
                text = list(tgt_ids)
                for _ in range(n_new):
                    lg, _ = tgt.run(text, [(site, lt, tp, h)])
                    if gap(lg[-1]) < MIN_GAP:
                        return None
                    text.append(argmax(lg[-1]))
                cell["generated_ids"] = text[len(tgt_ids):]
            out.append(cell)
    return out


def draw(rng, k, cross, tgt):
    src_vocab = 96
    case = {"id": f"case{k:02d}" if k % 5 else k}  # every fifth id an integer
    n_src, n_tgt = int(rng.randint(4, 13)), int(rng.randint(4, 13))
    case["source_ids"] = [int(x) for x in rng.randint(0, src_vocab, n_src)]
    case["target_ids"] = [int(x) for x in rng.randint(0, tgt.n_vocab, n_tgt)]
    case["source_pos"] = int(rng.randint(-n_src, n_src))
    case["target_pos"] = int(rng.choice([-1, -1, int(rng.randint(-n_tgt, n_tgt))]))
    if not cross:
        case["site"] = SITES[k % len(SITES)]
    shape = k % 4
    if shape == 0:
        case["source_layers"], case["target_layers"] = "0-1", "0-1"
    elif shape == 1 and not cross:
        case["target_layers"] = "same"
    elif shape == 2:
        case["source_layers"], case["target_layers"] = [1, 0], 1
    else:
        case["source_layers"] = 1
    if k % 3 == 0:
        case["n_new"] = int(rng.randint(2, 6))
    return case


def main():
    modeldir, outdir = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    tiny, wide = GPT2(os.path.join(modeldir, "tiny")), GPT2(os.path.join(modeldir, "wide"))
    _, tc = tiny.run(list(range(12)), capture=True)
    _, wc = wide.run(list(range(12)), capture=True)
    A = random_affine(13, wide.n_embd, tiny.n_embd,
                      rms(torch.stack([wc[f"resid_post.{l}"] for l in range(wide.n_layer)])),
                      rms(torch.stack([tc[f"resid_post.{l}"] for l in range(tiny.n_layer)])))
    rng = np.random.RandomState(2024)
    cases, expected, redrawn = [], [], 0
    for k in range(N_CASES):
        cross = k >= N_CASES - N_CROSS
        while True:
            case = draw(rng, k, cross, tiny)
            got = cells(case, wide if cross else tiny, tiny, A if cross else None)
            if got is not None:
                break
            redrawn += 1
        if cross:
            case["source_model"], case["map"] = "build/models/wide", "tests/data/sweep/wide-to-tiny.f32"
        cases.append(case)
        for cell in got:
            cell["id"] = str(cell["id"])
            expected.append(cell)
    os.makedirs(outdir, exist_ok=True)
    A.numpy().astype("<f4").tofile(os.path.join(outdir, "wide-to-tiny.f32"))  # A is float32-exact
    with open(os.path.join(outdir, "jobs.jsonl"), "w") as f:
        for case in cases:
            f.write(json.dumps(case) + "\n")
    with open(os.path.join(outdir, "expected.jsonl"), "w") as f:
        for cell in expected:
            f.write(json.dumps(cell) + "\n")
    print(f"  {len(cases)} cases, {len(expected)} cells ({redrawn} near-ties drawn again) in {outdir}")


if __name__ == "__main__":
    main()
