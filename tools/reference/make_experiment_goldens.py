"""Writes tests/data/experiments/expected.jsonl: what the float64 oracle says the five experiments of
`patchscope experiment`, and examples/cross_family.c, give end to end on small inputs.

    /usr/bin/python3 tools/reference/make_experiment_goldens.py weights/tiny build/models/mid weights/tiny-llama \
        tests/data/experiments

(needs tools/train's node packages for GPT-2's tokens: `cd tools/train && npm ci`). Everything the C
command does is redone here from its documented definition, sharing no code with it: the texts are
tokenized by tiktoken, the subject and placeholder positions found on those ids, the seeded draws of
next-token and cross-model replayed (xorshift64*, as the job generator documents it), the affine maps
fitted in float64 (ridge on the weights, not the bias), every cell run by gpt2_ref.GPT2 (the patched
prompt rerun for every greedy token), and the scorers (object in the generation with spaces removed,
the description after the colon, ROUGE-L F1 on lowercase alphanumeric words, precision@1 and surprisal
against the source's own next token) applied to those runs. Inputs, all in tests/data/experiments:

  country_capital_city.tsv, company_ceo.tsv   rows of the official TSVs (attribute-extraction, every row)
  entities.tsv                                entity<TAB>reference lines (entity-description)
  multihop.tsv                                product<TAB>company<TAB>CEO lines (multi-hop)
  texts.txt                                   sentences (next-token; cross-model)
  cross_family.txt                            sentences (build/cross_family --prompts)

and the runs, as test_cli makes them (N_NEW greedy tokens):

  attribute-extraction --per-relation 0 -n 8          next-token --ridge 0.1
  entity-description -n 8                              multi-hop -n 6 (every layer pair)
  cross-model tiny -> tiny, --source-layers 1,3 --target-layers 3,5
  cross-model mid -> tiny, --source-layers 2 --target-layers 5 --per-relation 60

expected.jsonl has, per experiment, one line per result cell in the sweep's order ({"experiment", "id",
"source_layer", "target_layer", "top_id"} and "generated_ids" where tokens were generated), then its
summary checks: {"experiment", "summary_cell": how summarize's line for a cell begins, and the metrics'
values (precision_at_1, surprisal, rouge_l)}, or {"experiment", "summary_text": a piece of summary.json
as the command writes it (the attribute-extraction relations, the multi-hop tallies)}.
An argmax whose top-1/top-2 logit gap is under 1e-2, or a mapped cell whose top-1 moves when the map is
fitted on float32-rounded states, stops the script before it writes anything (choose other inputs).
"""
import json
import os
import re
import sys

import torch

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "train"))
from families_ref import load_llama  # noqa: E402
from gpt2_ref import GPT2, argmax, softmax  # noqa: E402
from tok import Tok  # noqa: E402

MIN_GAP = 2e-3  # weights/tiny's float32 logits in C differ from these by ~1e-5 (measured)
IDENTITY_PROMPT = "cat -> cat\n1135 -> 1135\nhello -> hello\n?"
FEW_SHOT = ("Syria: Country in the Middle East, Leonardo DiCaprio: American actor, Samsung: South Korean "
            "multinational major appliance and consumer electronics corporation, x")
N_AE, N_ED, N_MH, RIDGE = 8, 8, 6, 0.1
M64 = (1 << 64) - 1
TOK = Tok.of("gpt2")


def encode(text):
    return TOK.encode([text])[0]


NEAR_TIES = []  # every argmax too close to call, reported together at the end


def checked_argmax(logits, where):
    top = torch.topk(logits, 2).values
    if float(top[0] - top[1]) < MIN_GAP:
        NEAR_TIES.append(f"near-tie ({float(top[0] - top[1]):.2e}) at {where}")
    return argmax(logits)


class Rng:
    """xorshift64*, the job generators' draw"""

    def __init__(self, state):
        self.s = state & M64

    def next(self):
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & M64
        s ^= s >> 27
        self.s = s
        return (s * 2685821657736338717) & M64


class Runner:
    """One model's source states (cached per prompt) and patched cells."""

    def __init__(self, model):
        self.m, self.cache = model, {}

    def states(self, ids):
        key = tuple(ids)
        if key not in self.cache:
            logits, cache = self.m.run(list(ids), capture=True)
            self.cache[key] = (logits, torch.stack([cache[f"resid_post.{l}"] for l in range(self.m.n_layer)]))
        return self.cache[key]

    def cell(self, tgt, tp, lt, h, n_new, where):
        """(top-1, last-position logits, greedy ids) with resid_post (lt, tp) overwritten by h"""
        patch = [] if h is None else [("resid_post", lt, tp, h)]
        logits, _ = self.m.run(list(tgt), patch)
        top = checked_argmax(logits[-1], where)
        text = list(tgt)
        for k in range(n_new):
            lg, _ = self.m.run(text, patch)
            text.append(checked_argmax(lg[-1], f"{where}, token {k}"))
        return top, logits[-1], text[len(tgt):]


def fit(X, Y, ridge):
    """least squares [x, 1] A ~ y, ridge on the weights only"""
    Xb = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1)
    G = Xb.T @ Xb
    G[:-1, :-1] += ridge * torch.eye(X.shape[1], dtype=X.dtype)
    return torch.linalg.solve(G, Xb.T @ Y)


def apply(A, h):
    return torch.cat([h, torch.ones(1, dtype=h.dtype)]) @ A


def f32(x):
    return x.float().double()


def find_last(ids, pat):
    for k in range(len(ids) - len(pat), -1, -1):
        if ids[k:k + len(pat)] == pat:
            return k + len(pat) - 1
    return -1


def cell_line(name, cid, ls, lt, top, gen):
    line = {"experiment": name, "id": cid, "source_layer": ls, "target_layer": lt, "top_id": top}
    if gen is not None:
        line["generated_ids"] = gen
    return line


def ratio(a, b):
    return a / b if b else None


def c_text(obj):
    """obj as the C writes its summaries: keys in order, numbers as %.6g, null for None"""
    if obj is None:
        return "null"
    if isinstance(obj, bool) or isinstance(obj, int):
        return str(int(obj))
    if isinstance(obj, float):
        return "%.6g" % obj
    if isinstance(obj, str):
        return json.dumps(obj)
    return "{" + ", ".join(f"{json.dumps(k)}: {c_text(v)}" for k, v in obj.items()) + "}"


def summary_cell_checks(name, cells):
    """summarize's cells as checks: the line's start as it prints it, and the metrics' values"""
    out = []
    for c in cells:
        head = "".join(f"{json.dumps(k)}: {json.dumps(c[k])}, " for k in ("group", "source_layer", "target_layer", "n") if k in c)
        out.append({"experiment": name, "summary_cell": "{" + head,
                    **{k: v for k, v in c.items() if k in ("precision_at_1", "surprisal", "rouge_l")}})
    return out


def object_in_text(obj, text):
    o = obj.replace(" ", "")
    return int(bool(o) and o in text.replace(" ", ""))


# ---------------------------------------------------------------------------------------------
# The experiments: (result cells, summary)

def read_tsv(path):
    """pandas' TSV: tab-separated, a quoted field may hold tabs, newlines and "" for a quote"""
    text, rows, row, field, i, quoted = open(path, encoding="utf-8").read(), [], [], "", 0, False
    while i < len(text):
        c = text[i]
        if quoted:
            if c == '"' and text[i + 1:i + 2] == '"':
                field, i = field + '"', i + 1
            elif c == '"':
                quoted = False
            else:
                field += c
        elif c == '"' and field == "":
            quoted = True
        elif c == "\t":
            row, field = row + [field], ""
        elif c == "\n":
            rows, row, field = rows + [row + [field]], [], ""
        else:
            field += c
        i += 1
    if field or row:
        rows.append(row + [field])
    return rows[0], rows[1:]


def subject_position(src, subject, official):
    """the last token of " subject" (the occurrence ending at the official position, else the last), or of
    "subject" at the start; -1 when the subject is tokenized differently there"""
    for k_pat, start_only in ((encode(" " + subject), False), (encode(subject), True)):
        ends = [k + len(k_pat) - 1 for k in range(len(src) - len(k_pat) + 1)
                if src[k:k + len(k_pat)] == k_pat and (not start_only or k == 0)]
        if ends:
            return official if official in ends else ends[-1]
    return -1


def attribute_extraction(run, data_dir):
    L, cells, relations = run.m.n_layer, [], []
    x_pat = encode(" x")
    total = right_total = 0
    for name in ("country_capital_city", "company_ceo"):
        head, rows = read_tsv(os.path.join(data_dir, name + ".tsv"))
        col = {h: k for k, h in enumerate(head)}
        rel = {"relation": name, "rows": len(rows), "drawn": len(rows), "dropped": 0, "cases": 0}
        base_right, cells_b, right_b = 0, [0, 0], [0, 0]
        for r in rows:
            src, tgt = encode(r[col["prompt_source"]]), encode(r[col["prompt_target"]])
            pos, x = subject_position(src, r[col["subject"]], int(r[col["position_source"]])), find_last(tgt, x_pat)
            if pos < 0 or x < 0:
                rel["dropped"] += 1
                continue
            cid, obj = f"{name}/{r[0]}", r[col["object"]]
            _, hs = run.states(src)
            patched = []
            for l in range(L):
                top, _, gen = run.cell(tgt, x, l, hs[l][pos], N_AE, f"{cid} layer {l}")
                cells.append(cell_line("attribute-extraction", cid, l, l, top, gen))
                patched.append(object_in_text(obj, TOK.decode(gen)))
            base = encode(r[col["target_baseline"]])
            top, _, gen = run.cell(base, -1, L - 1, None, N_AE, f"{cid} baseline")
            cells.append(cell_line("attribute-extraction", cid + "/baseline", L - 1, L - 1, top, gen))
            b = object_in_text(obj, TOK.decode(gen))
            base_right += b
            cells_b[b] += len(patched)
            right_b[b] += sum(patched)
            total += len(patched)
            right_total += sum(patched)
            rel["cases"] += 1
        rel.update(baseline_accuracy=ratio(base_right, rel["cases"]), accuracy=ratio(right_b[0] + right_b[1], cells_b[0] + cells_b[1]),
                   accuracy_baseline_right=ratio(right_b[1], cells_b[1]), accuracy_baseline_wrong=ratio(right_b[0], cells_b[0]))
        relations.append(rel)
    checks = [{"experiment": "attribute-extraction", "summary_text": c_text(r)} for r in relations]
    return cells, checks + [{"experiment": "attribute-extraction", "summary_text": f"], \"accuracy\": {c_text(ratio(right_total, total))}}}"}]


def rouge_l(candidate, reference):
    a, b = (re.findall(r"[a-z0-9]+", s.lower()) for s in (candidate, reference))
    if not a or not b:
        return 0.0
    row = [0] * (len(b) + 1)
    for wa in a:  # the longest common subsequence, a row at a time
        prev = 0
        for j, wb in enumerate(b):
            prev, row[j + 1] = row[j + 1], prev + 1 if wa == wb else max(row[j + 1], row[j])
    lcs = row[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)


def description_of(gen):
    text = gen.lstrip(" :")
    return re.split(r"[,\n]", text, maxsplit=1)[0].rstrip(" ")


def entity_description(run, data_dir):
    L, cells, per_layer = run.m.n_layer, [], [[] for _ in range(run.m.n_layer)]
    tgt = encode(FEW_SHOT)
    x = find_last(tgt, encode(" x"))
    lines = [ln for ln in open(os.path.join(data_dir, "entities.tsv"), encoding="utf-8").read().split("\n")
             if ln and not ln.startswith("#")]
    for k, ln in enumerate(lines):
        entity, _, ref = ln.partition("\t")
        _, hs = run.states(encode(entity))
        for l in range(L):
            top, _, gen = run.cell(tgt, x, l, hs[l][-1], N_ED, f"{entity} layer {l}")
            cells.append(cell_line("entity-description", f"entity/{k}", l, l, top, gen))
            if ref:
                per_layer[l].append(rouge_l(description_of(TOK.decode(gen)), ref))
    return cells, summary_cell_checks("entity-description", [{"source_layer": l, "target_layer": l, "n": len(lines),
                                                              "rouge_l": sum(v) / len(v)} for l, v in enumerate(per_layer)])


def multi_hop(run, data_dir):
    L, cells = run.m.n_layer, []
    rows = [ln.split("\t") for ln in open(os.path.join(data_dir, "multihop.tsv"), encoding="utf-8").read().split("\n")
            if ln and not ln.startswith("#")]
    tgt = encode("Who is the current CEO of x")
    x = find_last(tgt, encode(" x"))
    tally = dict(hop1_right=0, hop2_right=0, both_hops_right=0, two_hop_question_right=0, patchscope_solves=0,
                 patchscope_solves_where_the_question_fails=0)
    n_cells = n_right = 0
    for i, (product, company, ceo) in enumerate(rows):
        cid = f"multihop/{i}"
        _, hs = run.states(encode(f"{product} was created by"))
        solved = 0
        for a in range(L):
            for b in range(L):
                top, _, gen = run.cell(tgt, x, b, hs[a][-1], N_MH, f"{cid} layers {a} {b}")
                cells.append(cell_line("multi-hop", cid, a, b, top, gen))
                ok = object_in_text(ceo, TOK.decode(gen))
                n_cells, n_right, solved = n_cells + 1, n_right + ok, solved | ok
        right = {}
        for kind, prompt, obj in (("baseline", f"Who is the current CEO of the company that created {product}", ceo),
                                  ("first_hop", f"{product} was created by", company),
                                  ("second_hop", f"Who is the current CEO of {company}", ceo)):
            top, _, gen = run.cell(encode(prompt), -1, L - 1, None, N_MH, f"{cid} {kind}")
            cells.append(cell_line("multi-hop", f"{cid}/{kind}", L - 1, L - 1, top, gen))
            right[kind] = object_in_text(obj, TOK.decode(gen))
        tally["hop1_right"] += right["first_hop"]
        tally["hop2_right"] += right["second_hop"]
        tally["both_hops_right"] += right["first_hop"] and right["second_hop"]
        tally["two_hop_question_right"] += right["baseline"]
        tally["patchscope_solves"] += solved
        tally["patchscope_solves_where_the_question_fails"] += solved and not right["baseline"]
    text = c_text(dict(cases=len(rows), **tally, accuracy=ratio(n_right, n_cells)))
    return cells, [{"experiment": "multi-hop", "summary_text": text[1:]}]


def texts(data_dir):
    return [ln for ln in open(os.path.join(data_dir, "texts.txt"), encoding="utf-8").read().split("\n") if ln]


def read_cell(run, src, sp, tgt, tp, lt, h, where, source_logits):
    """a next-token cell: top-1, precision@1 and surprisal against the source's own next token"""
    top, _, _ = run.cell(tgt, tp, lt, h, 0, where)
    want = checked_argmax(source_logits, where + " (the source's own next token)")
    return top, int(top == want), float(-torch.log(softmax(source_logits)[top]))


def summary_cells(groups):
    out = []
    for (group, ls, lt), v in groups.items():
        cell = {"source_layer": ls, "target_layer": lt, "n": len(v),
                "precision_at_1": sum(p for p, _ in v) / len(v), "surprisal": sum(s for _, s in v) / len(v)}
        if group is not None:
            cell = {"group": group, **cell}
        out.append(cell)
    return out


def check_map_stable(A, A32, h, run, tgt, tp, lt, top, where):
    """the cell's top-1 does not move when the map comes from float32-rounded states"""
    logits, _ = run.m.run(list(tgt), [("resid_post", lt, tp, apply(A32, h))])
    if argmax(logits[-1]) != top:
        NEAR_TIES.append(f"{where}: the top-1 moves with float32 states")


def next_token(run, data_dir):
    L, C, cells, groups = run.m.n_layer, run.m.n_embd, [], {}
    rng = Rng(0 * 0x9E3779B97F4A7C15 + 0x1234567)
    train, valid = [], []
    for i, t in enumerate(texts(data_dir)):
        ids = encode(t)
        if len(ids) < 2 or len(ids) > run.m.n_ctx:
            continue
        p = rng.next() % (len(ids) - 1)
        (train if rng.next() % 1000 < 800 else valid).append((i, ids[:p + 1]))
    X = torch.stack([torch.stack([run.states(ids)[1][l][-1] for _, ids in train]) for l in range(L)])
    maps = [fit(X[l], X[L - 1], RIDGE) for l in range(L)]
    maps32 = [fit(f32(X[l]), f32(X[L - 1]), RIDGE) for l in range(L)]
    ident = encode(IDENTITY_PROMPT)
    for i, ids in valid:
        logits, hs = run.states(ids)
        src_logits = logits[-1]
        jobs = [("logit lens", f"lens/{i}", [(l, L - 1, hs[l][-1]) for l in range(L)], ids),
                ("token identity", f"identity/{i}", [(l, l, hs[l][-1]) for l in range(L)], ident)]
        for name, cid, todo, tgt in jobs:
            for ls, lt, h in todo:
                top, p1, s = read_cell(run, ids, -1, tgt, -1, lt, h, f"{cid} layer {ls}", src_logits)
                cells.append(cell_line("next-token", cid, ls, lt, top, None))
                groups.setdefault((name, ls, lt), []).append((p1, s))
        for l in range(L):
            for name, cid, tgt, lt in (("affine lens", f"affine/{i}/{l}", ids, L - 1),
                                       ("token identity + map", f"identity-map/{i}/{l}", ident, l)):
                h = hs[l][-1]
                top, p1, s = read_cell(run, ids, -1, tgt, -1, lt, apply(maps[l], h), cid, src_logits)
                check_map_stable(maps[l], maps32[l], h, run, tgt, -1, lt, top, cid)
                cells.append(cell_line("next-token", cid, l, lt, top, None))
                groups.setdefault((name, l, lt), []).append((p1, s))
    summary = summary_cells(groups)
    return cells, summary_cell_checks("next-token", summary)


def cross_model(src_run, tgt_run, data_dir, source_layers, target_layers, max_texts, name):
    cells, groups = [], {}
    rng = Rng(0 * 0x9E3779B97F4A7C15 + 0x7654321)
    train, valid = [], []
    all_texts = texts(data_dir)
    for i, t in enumerate(all_texts[:max_texts] if max_texts else all_texts):
        ids = encode(t)  # one tokenizer: every prefix agrees, the first position drawn is taken
        n = min(len(ids), src_run.m.n_ctx, tgt_run.m.n_ctx)
        p = rng.next() % (n - 1) if n >= 2 else -1
        is_train = rng.next() % 5 != 0
        if p >= 0:
            (train if is_train else valid).append((i, ids[:p + 1]))
    X = [torch.stack([src_run.states(ids)[1][a][-1] for _, ids in train]) for a in range(src_run.m.n_layer)]
    Y = [torch.stack([tgt_run.states(ids)[1][b][-1] for _, ids in train]) for b in range(tgt_run.m.n_layer)]
    maps = {(a, b): (fit(X[a], Y[b], RIDGE), fit(f32(X[a]), f32(Y[b]), RIDGE)) for a in source_layers for b in target_layers}
    for i, ids in valid:
        logits, hs = src_run.states(ids)
        for a in source_layers:
            for b in target_layers:
                cid = f"cross/{i}/{a}/{b}"
                A, A32 = maps[(a, b)]
                top, p1, s = read_cell(tgt_run, ids, -1, ids, -1, b, apply(A, hs[a][-1]), cid, logits[-1])
                check_map_stable(A, A32, hs[a][-1], tgt_run, ids, -1, b, top, cid)
                cells.append(cell_line(name, cid, a, b, top, None))
                groups.setdefault((None, a, b), []).append((p1, s))
    return cells, summary_cell_checks(name, summary_cells(groups))


# ---------------------------------------------------------------------------------------------
# examples/cross_family.c: GPT-2 states, mapped, in the Llama's identity prompt

class LlamaRunner(Runner):
    def states(self, ids):
        key = tuple(ids)
        if key not in self.cache:
            logits, cache = self.m.run(list(ids))
            self.cache[key] = (logits, torch.stack([cache[f"resid_post.{l}"] for l in range(self.m.L)]))
        return self.cache[key]

    def logits(self, ids, lt, h):
        return self.m.run(list(ids), [("resid_post", lt, -1, h)])[0][-1]


def cross_family(gpt2, llama_dir, data_dir):
    """the example's two tables (precision@1 per GPT-2 layer x Llama layer: the word itself, the Llama's
    own next token) on cross_family.txt, ridge 1, every fourth sentence held out"""
    llama, tok_l = LlamaRunner(load_llama(llama_dir)), Tok.of(llama_dir)
    Ls, Lt = gpt2.m.n_layer, llama.m.L
    lines = [ln for ln in open(os.path.join(data_dir, "cross_family.txt"), encoding="utf-8").read().split("\n") if ln]
    pairs = []  # (held out, GPT-2 states [Ls, C], Llama states [Lt, C], the Llama's token there, its next token,
    #              the sentence)
    for n_sent, line in enumerate(lines):
        s1, s2 = encode(line), tok_l.encode([line])[0]
        assert s2[0] == 1, "the Llama's BOS"
        # bytes decoded from the first k tokens (the Llama's after its BOS, its decoder dropping one leading space)
        l1 = [len(b"".join(TOK.bytes[i] for i in s1[:k + 1])) for k in range(len(s1))]
        l2 = [len(tok_l.decode(s2[1:k + 2]).encode("utf-8")) for k in range(len(s2) - 1)]
        _, h1 = gpt2.states(s1)
        logits2, h2 = llama.states(s2)
        j = 0
        for i in range(len(s1)):
            while j < len(l2) and l2[j] < l1[i]:
                j += 1
            if j == len(l2) or l2[j] != l1[i] or l1[i] == 0:
                continue
            nxt = checked_argmax(logits2[j + 1], f"sentence {n_sent}: the Llama's next token at {j + 1}")
            pairs.append((n_sent % 4 == 3, h1[:, i], h2[:, j + 1], s2[j + 1], nxt, n_sent))
    train = [p for p in pairs if not p[0]]
    X = [torch.stack([p[1][a] for p in train]) for a in range(Ls)]
    Y = [torch.stack([p[2][b] for p in train]) for b in range(Lt)]
    ident = tok_l.encode(["cat->cat; 135->135; hello->hello; ?->"])[0]

    def word(i):
        return tok_l.bytes.get(i, b"").lstrip(b" ")

    word_right = [[0] * Lt for _ in range(Ls)]
    next_right = [[0] * Lt for _ in range(Ls)]
    held = [p for p in pairs if p[0]]
    for a in range(Ls):
        for b in range(Lt):
            A, A32 = fit(X[a], Y[b], 1.0), fit(f32(X[a]), f32(Y[b]), 1.0)
            for _, x, _, want, nxt, n_sent in held:
                def verdict(t):  # what the tables count: the word itself, the Llama's next token
                    return bool(word(t)) and word(t) == word(want), bool(word(t)) and word(t) == word(nxt)
                logits = llama.logits(ident, b, apply(A, x[a]))
                top, second = torch.topk(logits, 2).indices.tolist()
                # a near-tie, or a top-1 that moves with float32 states, matters only where the verdicts differ
                if float(logits[top] - logits[second]) < MIN_GAP and verdict(top) != verdict(second):
                    NEAR_TIES.append(f"sentence {n_sent}, layers {a} {b}: a near-tie between verdicts")
                if verdict(argmax(llama.logits(ident, b, apply(A32, x[a])))) != verdict(top):
                    NEAR_TIES.append(f"sentence {n_sent}, layers {a} {b}: the verdict moves with float32 states")
                word_right[a][b] += verdict(top)[0]
                next_right[a][b] += verdict(top)[1]
    return [{"experiment": "cross-family", "sentences": len(lines), "pairs": len(pairs), "train": len(train),
             "held_out": len(held), "word": [[v / len(held) for v in row] for row in word_right],
             "next": [[v / len(held) for v in row] for row in next_right]}]


def main():
    tiny_dir, mid_dir, llama_dir, data_dir = sys.argv[1:5]
    torch.set_num_threads(1)
    tiny, mid = Runner(GPT2(tiny_dir)), Runner(GPT2(mid_dir))
    lines = cross_family(tiny, llama_dir, data_dir)
    print(f"  cross-family: {json.dumps(lines[0])[:200]}")
    for name, result in (("attribute-extraction", attribute_extraction(tiny, data_dir)),
                         ("entity-description", entity_description(tiny, data_dir)),
                         ("multi-hop", multi_hop(tiny, data_dir)),
                         ("next-token", next_token(tiny, data_dir)),
                         ("cross-model", cross_model(tiny, tiny, data_dir, [1, 3], [3, 5], 0, "cross-model")),
                         ("cross-model-mid", cross_model(mid, tiny, data_dir, [2], [5], 60, "cross-model-mid"))):
        cells, checks = result
        lines += cells + checks
        print(f"  {name}: {len(cells)} cells, {len(checks)} summary checks")
    if NEAR_TIES:
        raise SystemExit("\n".join(NEAR_TIES) + "\nchoose other inputs")
    with open(os.path.join(data_dir, "expected.jsonl"), "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
