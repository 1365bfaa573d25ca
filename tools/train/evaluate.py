"""Evaluate an exported tiny model (HF layout: weights/tiny or weights/tiny-llama) in float64 PyTorch, as
the C library will read it.

    /usr/bin/python3 evaluate.py [--model ../../weights/tiny] [--heldout HELDOUT.json] [--json OUT.json]

Reads the corpus's heldout.json (corpus.py; out/ for GPT-2, out/llama/ for Llama) for the held-out words
and templates. Prints markdown tables; --json writes every number. Conventions are the project's: 0-based
layers, h_l = output of block l before the final norm, logit lens = softmax(unembedding . norm(h_l)),
greedy decoding, source position = last occurrence. Prompts are tokenized as the model's tokenizer does
by default: GPT-2 adds nothing, Llama puts BOS first (position 0), so its positions count the BOS.
"""
import argparse
import json
import os

import torch

import gpt2
import llama
from hub import load_safetensors
from tok import Tok
from train import ARCHS

HERE = os.path.dirname(os.path.abspath(__file__))

PROMPT_A = "Amazon's former CEO attended Oscars"
TARGET_A = "cat->cat; 135->135; hello->hello; ?->"
PROMPT_B = "Q: What is the capital of Somalia?\nA: Mogadishu\nQ: What is the capital of Poland?\nA:"
PROMPT_C = "The capital of Somalia is Mogadishu.\nThe capital of Poland is Warsaw.\n" + PROMPT_B
MODULES = {"gpt2": gpt2, "llama": llama}


class Runner:
    def __init__(self, model):
        self.m = model
        self.L = len(model.hidden(torch.tensor([[0]])))

    @torch.no_grad()
    def hidden(self, ids):
        return [h[0] for h in self.m.hidden(torch.tensor([ids]))]

    @torch.no_grad()
    def run_patched(self, ids, layer, pos, vec):
        """Logits at every position after overwriting the output of block `layer` at `pos` with vec."""
        return self.m.logits(self.m.hidden(torch.tensor([ids]), (layer, pos, vec))[-1])[0]

    @torch.no_grad()
    def lens(self, h):
        return torch.softmax(self.m.logits(h), dim=-1)

    @torch.no_grad()
    def greedy(self, ids, n, stop=()):
        ids, out = list(ids), []
        for _ in range(n):
            h = self.m.hidden(torch.tensor([ids[-self.m.n_ctx:]]))[-1][0, -1]
            nxt = int(self.m.logits(h).argmax())
            if nxt in stop:
                break
            out.append(nxt)
            ids.append(nxt)
        return out


def rank_of(p, tok):
    return int((p > p[tok]).sum())


def recall(run, tok, cases, stop_ids):
    """cases: (prompt, [acceptable answers]). Greedy answer (up to a stop token) must equal one of them."""
    prompts = tok.encode([c[0] for c in cases])
    tok.continuation([(p, " " + a) for p, ok in cases for a in ok])  # one batch; the loop hits the cache
    full_ok = first_ok = 0
    wrong = []
    for (prompt, ok), ids in zip(cases, prompts):
        gen = run.greedy(ids, 10, stop_ids)
        text = tok.decode(gen).strip()
        first_ok += any(gen[:1] == w[:1] for w in tok.continuation([(prompt, " " + a) for a in ok]))
        if text in ok:
            full_ok += 1
        elif len(wrong) < 6:
            wrong.append(f"{prompt!r} -> {text!r}")
    return {"n": len(cases), "exact": full_ok / len(cases), "first_token": first_ok / len(cases),
            "examples_wrong": wrong}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(HERE, "..", "..", "weights", "tiny"))
    ap.add_argument("--heldout", default=None, help="default: heldout.json of the model's corpus")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    mt = cfg["model_type"]
    model = MODULES[mt].from_hf_state(load_safetensors(os.path.join(a.model, "model.safetensors")), cfg)
    run, tok = Runner(model), Tok.of(a.model)
    L = run.L
    held = json.load(open(a.heldout or os.path.join(ARCHS[mt]["corpus"], "heldout.json")))
    countries, companies = held["countries"], held["companies"]
    nl, semi, dot, comma = (ids[0] for ids in tok.continuation([("x", s) for s in ("\n", ";", ".", ",")]))
    # a document ends at EOS, or (Llama, trained without EOS) where the next one's BOS begins
    stop = {nl, semi, dot, comma, cfg["eos_token_id"], cfg["bos_token_id"]}
    res = {"model": os.path.relpath(a.model), "layers": L, "bos": tok.encode([""])[0]}  # what a prompt starts with

    # ---- fact recall ------------------------------------------------------------------------------
    def shot(c):
        return ("Somalia", "Mogadishu") if c != "Somalia" else ("France", "Paris")
    capq = lambda c: f"Q: What is the capital of {c}?\nA:"
    sets = {
        "capital one-shot Q/A (trained format)":
            [(f"Q: What is the capital of {shot(c)[0]}?\nA: {shot(c)[1]}\n" + capq(c), [k]) for c, k in countries],
        "capital zero-shot Q/A (trained format)": [(capq(c), [k]) for c, k in countries],
        "capital statement 'The capital of X is' (trained)": [(f"The capital of {c} is", [k]) for c, k in countries],
    }
    for t in held["capital_heldout_templates"]:
        cs = [(c, k) for c, k in countries if not (t.startswith("{C}") and c.startswith("the "))]
        sets[f"capital held-out template {t!r}"] = [
            (t.format(c=c, C=c[0].upper() + c[1:]), [k]) for c, k in cs]
    with_cur = [(x, p, f) for x, p, f in companies if p]
    with_former = [(x, p, f) for x, p, f in companies if f]
    possx = lambda x: x if x.endswith("'s") else x + "'s"
    sets["CEO current Q/A (trained format)"] = [(f"Q: Who is the CEO of {x}?\nA:", [p]) for x, p, f in with_cur]
    sets["CEO former Q/A (trained format)"] = [(f"Q: Who is a former CEO of {x}?\nA:", f) for x, p, f in with_former]
    sets["CEO 'X's former CEO,' (trained)"] = [(f"{possx(x)} former CEO,", f) for x, p, f in with_former]
    for t, which in held["ceo_heldout_templates"]:
        src = with_cur if which == "current" else with_former
        sets[f"CEO held-out template {t!r}"] = [
            (t.format(x=x, X=possx(x)), [p] if which == "current" else f) for x, p, f in src]
    res["recall"] = {}
    print("## Fact recall (greedy, exact answer up to newline/period)\n")
    print("| set | n | exact | first token |\n|---|---|---|---|")
    for name, cases in sets.items():
        r = recall(run, tok, cases, stop)
        res["recall"][name] = r
        print(f"| {name} | {r['n']} | {r['exact']:.3f} | {r['first_token']:.3f} |")

    # ---- copy format ------------------------------------------------------------------------------
    print("\n## Copy format `cat->cat; 135->135; hello->hello; w->` (greedy until ';' or newline)\n")
    print("| words | n | exact copy | first token |\n|---|---|---|---|")
    res["copy"], copied = {}, {}
    for label, words in (("held-out (never copied in training)", held["copy_heldout_words"]),
                        ("training words (first 300)", held["copy_train_words"][:300])):
        cases = [(f"cat->cat; 135->135; hello->hello; {w}->", w) for w in words]
        ids = tok.encode([c[0] for c in cases])
        wid = tok.continuation([(p, w) for p, w in cases])
        ok, first, fails = [], 0, []
        for (p, w), pi, wi in zip(cases, ids, wid):
            gen = run.greedy(pi, 6, stop)
            first += gen[:1] == wi[:1]
            if gen == wi:
                ok.append(w)
            elif len(fails) < 8:
                fails.append(f"{w!r} -> {tok.decode(gen)!r}")
        copied[label] = ok
        ok = len(ok)
        res["copy"][label] = {"n": len(words), "exact": ok / len(words), "first_token": first / len(words),
                             "examples_wrong": fails}
        print(f"| {label} | {len(words)} | {ok / len(words):.3f} | {first / len(words):.3f} |")

    # ---- logit lens -------------------------------------------------------------------------------
    (ida, idt, idb, idc) = tok.encode([PROMPT_A, TARGET_A, PROMPT_B, PROMPT_C])
    ceo = tok.id(" CEO")
    pol, war = (w[0] for w in tok.continuation([("of", " Poland"), ("is", " Warsaw")]))  # first tokens
    src_pos = max(i for i, t in enumerate(ida) if t == ceo)
    name = tok.label

    def top2(logits):
        """top-1 with its margin over the runner-up, in logits: what a C test can assert"""
        v, i = logits.topk(2)
        return {"top": int(i[0]), "top_str": name(int(i[0])), "p": float(torch.softmax(logits, -1)[i[0]]),
                "margin": float(v[0] - v[1]), "second": int(i[1]), "second_str": name(int(i[1]))}

    hs_a = run.hidden(ida)
    res["lens_ceo"] = []
    print(f"\n## Logit lens at the ' CEO' position ({src_pos}) of {PROMPT_A!r}\n")
    print("| layer | top-1 | p | rank of ' CEO' | p(' CEO') |\n|---|---|---|---|---|")
    for l in range(L):
        p = run.lens(hs_a[l][src_pos])
        t = int(p.argmax())
        res["lens_ceo"].append({"layer": l, "top": t, "top_str": name(t), "p": float(p[t]),
                                "rank_ceo": rank_of(p, ceo), "p_ceo": float(p[ceo])})
        print(f"| {l} | {name(t)!r} | {float(p[t]):.4f} | {rank_of(p, ceo)} | {float(p[ceo]):.4f} |")

    hidden = {}
    for key, ids in (("B", idb), ("C", idc)):
        hs = hidden[key] = run.hidden(ids)
        rows = []
        print(f"\n## Logit lens, last position of the Experiment {key} prompt ({len(ids)} tokens)\n")
        print("| layer | top-1 | p | RR ' Poland' | RR ' Warsaw' |\n|---|---|---|---|---|")
        for l in range(L):
            p = run.lens(hs[l][-1])
            t = int(p.argmax())
            rr_p, rr_w = 1 / (rank_of(p, pol) + 1), 1 / (rank_of(p, war) + 1)
            rows.append({"layer": l, "top": t, "top_str": name(t), "p": float(p[t]), "rr_poland": rr_p,
                         "rr_warsaw": rr_w})
            print(f"| {l} | {name(t)!r} | {float(p[t]):.4f} | {rr_p:.4f} | {rr_w:.4f} |")
        res[f"lens_{key}"] = rows
        # Patchscope as in the figures: source layer l -> target layer L-2 at the same (last) position
        tl = L - 2
        patch = []
        for l in range(tl + 1):
            p = torch.softmax(run.run_patched(ids, tl, len(ids) - 1, hs[l][-1])[-1], dim=-1)
            t = int(p.argmax())
            patch.append({"source_layer": l, "top": t, "top_str": name(t), "p": float(p[t])})
        res[f"patch_{key}_to_layer_{tl}"] = patch
        print(f"\nPatchscope {key}: source layer l -> target layer {tl}, last position: " +
              ", ".join(f"{r['source_layer']}:{r['top_str']!r} {r['p']:.3f}" for r in patch))
        gen = run.greedy(ids, 4, {nl, cfg["eos_token_id"], cfg["bos_token_id"]})
        res[f"greedy_{key}"] = tok.decode(gen)
        print(f"greedy answer to {key}: {res[f'greedy_{key}']!r}")

    # ---- CEO grid ---------------------------------------------------------------------------------
    for tpos, label in ((len(idt) - 1, "last position ('->')"), (len(idt) - 2, "placeholder position (' ?')")):
        grid = []
        print(f"\n## CEO grid: source ' CEO' h_l -> target {label}, top-1 at the last position\n")
        print("| src \\ tgt | " + " | ".join(str(j) for j in range(L)) + " |")
        print("|---" * (L + 1) + "|")
        for l in range(L):
            row = []
            for j in range(L):
                row.append(top2(run.run_patched(idt, j, tpos, hs_a[l][src_pos])[-1]))
            grid.append(row)
            print(f"| {l} | " + " | ".join(f"{c['top_str']!r} {c['p']:.2f}" for c in row) + " |")
        res["ceo_grid_" + ("last" if tpos == len(idt) - 1 else "placeholder")] = grid
    p = torch.softmax(model(torch.tensor([idt]))[0, -1], dim=-1)
    res["target_unpatched_top"] = name(int(p.argmax()))
    print(f"\nunpatched target prompt top-1: {res['target_unpatched_top']!r} p={float(p.max()):.3f}")
    res["token_ids"] = {"prompt_A": ida, "target_A": idt, "prompt_B": idb, "prompt_C": idc, " CEO": ceo,
                        " Poland": pol, " Warsaw": war}

    # ---- what a C test can assert: top-1 with its margin over the runner-up, in logits ---------------
    def next_top2(text):
        return top2(model(torch.tensor(tok.encode([text])))[0, -1])

    checks = {
        "B next token": top2(model(torch.tensor([idb]))[0, -1]),
        "C next token": top2(model(torch.tensor([idc]))[0, -1]),
        "target prompt next token (unpatched)": top2(model(torch.tensor([idt]))[0, -1]),
        "Q/A China next token": next_top2("Q: What is the capital of China?\nA:"),
        "'The capital of Poland is' next token": next_top2("The capital of Poland is"),
        "Q/A former CEO of Amazon next token": next_top2("Q: Who is a former CEO of Amazon?\nA:"),
    }
    for l in range(L):
        checks[f"lens ' CEO' position {src_pos} layer {l}"] = top2(model.logits(hs_a[l][src_pos]))
    for l in range(L):
        checks[f"lens B last position layer {l}"] = top2(model.logits(hidden["B"][l][-1]))
    for l, j in ((0, 4), (0, 5), (1, 4), (3, 0), (3, 1)):
        checks[f"CEO grid (last position) source {l} target {j}"] = res["ceo_grid_last"][l][j]
    for label, words in copied.items():
        for w in words[:5]:
            ids = tok.encode([f"cat->cat; 135->135; hello->hello; {w}->"])[0]
            checks[f"copy {label.split()[0]} {w!r} (item ids {ids[-2:]})"] = top2(model(torch.tensor([ids]))[0, -1])
    res["checks"] = checks
    print("\n## Top-1 and margin (logit of top-1 minus runner-up) for tests\n")
    print("| case | top-1 (id) | p | margin | runner-up (id) |\n|---|---|---|---|---|")
    for k, c in checks.items():
        print(f"| {k} | {c['top_str']!r} ({c['top']}) | {c['p']:.4f} | {c['margin']:.3f} | "
              f"{c['second_str']!r} ({c['second']}) |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
