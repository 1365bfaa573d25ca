"""Write the synthetic training corpus and the held-out evaluation sets of the tiny model.

    /usr/bin/python3 corpus.py [--tokenizer gpt2|llama] [--docs N] [--seed S] [--out DIR]

Outputs (in out/): corpus.txt, documents separated by <|endoftext|>; heldout.json, the word lists and
templates that never occur in the corpus, for evaluate.py. The same seed and tokenizer give the same
bytes. The tokenizer only decides which words the copy format uses (single tokens of that tokenizer);
everything else is the same text for both models.

The corpus teaches four things, each in several templates so no single phrasing carries a fact:
country -> capital (statements, one-shot Q/A chains as in Experiment B, the extractive form of
Experiment C), company -> current/former CEO, the few-shot copy format "cat->cat; 135->135; w->w"
of the token-identity target prompt, and filler.
"""
import argparse
import json
import os
import random
import re

from facts import COMPANIES, COUNTRIES
from tok import Tok

HERE = os.path.dirname(os.path.abspath(__file__))
EOT = "<|endoftext|>"

# The experiment prompts themselves never occur in the corpus (evaluation uses them as they are).
EXPERIMENT_B_PAIR = ("Somalia", "Poland")


def cap(s):
    return s[0].upper() + s[1:]


def poss(name):
    return name if name.endswith("'s") else name + "'s"


# ---------------------------------------------------------------------------------------------------
# Word lists for the copy format

def fact_words():
    """Every word of a country, capital, company or CEO name: these keep trainable embedding rows."""
    names = [s for c, k in COUNTRIES for s in (c, k)]
    names += [s for x, cur, formers in COMPANIES for s in [x, cur or ""] + formers]
    return {w for s in names for w in re.findall(r"[A-Za-z]+", s)}


def copy_words(rng, tok):
    """Words whose spaced and unspaced forms are both single tokens, and numbers.

    Returns (train, heldout); held-out items never appear in the copy format, only in filler, so the
    model never saw them copied. Both lists get frozen random embedding codes in training (train.py),
    so a held-out word looks to the model exactly like a training word it has not met yet. A word counts
    when " w->w" really tokenizes as [" w", "->", "w"] after an item, as in the copy format. Numbers are
    those kept whole by the tokenizer (GPT-2); Llama's tokenizer splits every number into digits, so there
    every number below 1000 is an item, copied digit by digit."""
    facts = fact_words()
    both = lambda w: None not in tok.word_ids(w) and w not in facts
    lower = sorted(w for w in tok.vocab if re.fullmatch(r"[a-z]{3,10}", w) and both(w))
    upper = sorted(w for w in tok.vocab if re.fullmatch(r"[A-Z][a-z]{2,9}", w) and both(w))
    nums = [str(i) for i in range(1000) if both(str(i))] or [str(i) for i in range(1000)]
    words = lower + upper
    arrow = tok.continuation([("x", "->")])[0]
    got = tok.continuation([("cat->cat;", f" {w}->{w}") for w in words])
    ok = {w for w, g in zip(words, got) if g == [tok.word_ids(w)[1]] + arrow + [tok.word_ids(w)[0]]}
    lower, upper = [w for w in lower if w in ok], [w for w in upper if w in ok]
    keep = {"cat", "hello", "135"}  # the items of the target prompt are ordinary training words
    for lst in (lower, upper, nums):
        rng.shuffle(lst)
    lower, upper, nums = ([w for w in lst if w not in keep] for lst in (lower, upper, nums))
    held = lower[:240] + upper[:60] + nums[:60]
    # Many words, each copied fairly rarely: copying has to be learned as a mechanism, not word by word.
    train = lower[240:2240] + upper[60:460] + nums[60:] + sorted(keep)
    return train, held


def random_string(rng):
    """A pronounceable nonsense word, usually several BPE tokens: copying it needs a general mechanism."""
    cons, vow = "bcdfghjklmnprstvwz", "aeiou"
    return "".join(rng.choice(cons) + rng.choice(vow) for _ in range(rng.randint(2, 4)))


# ---------------------------------------------------------------------------------------------------
# Templates. Held-out templates are kept here too, next to the ones they must not resemble exactly.

CAPITAL_TRAIN = [
    "The capital of {c} is {k}.",
    "{k} is the capital of {c}.",
    "{k} is the capital city of {c}.",
    "{C} has its capital in {k}.",
    "In {k}, the capital of {c}, {filler_clause}.",
    "{K} lies in {c} and is its capital.",
    "The government of {c} sits in {k}.",
]
CAPITAL_HELDOUT = [  # evaluation only; the answer follows the prompt
    "The capital city of {c} is",
    "Q: Which city is the capital of {c}?\nA:",
    "{C}'s capital is",
]
CEO_EVENTS = ["the Oscars", "the Grammys", "the Met Gala", "the Super Bowl", "the World Economic Forum",
              "the Olympics", "the Emmys", "the Golden Globes", "the Cannes Film Festival",
              "the Wimbledon final", "a charity dinner", "the opening of a museum"]
CEO_VERBS = ["attended", "spoke at", "was seen at", "skipped", "arrived late at", "left early from",
             "watched", "praised"]
CEO_CURRENT_TRAIN = [
    "The CEO of {x} is {p}.",
    "{p} is the CEO of {x}.",
    "{X} CEO, {p}, {v} {e}.",
    "{X} CEO {p} {v} {e}.",
    "{P} runs {x} as its CEO.",
    "As CEO of {x}, {p} {v} {e}.",
]
CEO_FORMER_TRAIN = [
    "{X} former CEO, {f}, {v} {e}.",
    "{X} former CEO {f} {v} {e}.",
    "{F} is a former CEO of {x}.",
    "The former CEO of {x}, {f}, {v} {e}.",
    "{F}, the former CEO of {x}, {v} {e}.",
    "{F} was once the CEO of {x}.",
]
CEO_HELDOUT = [
    ("The current CEO of {x} is", "current"),
    ("Q: Who runs {x}?\nA:", "current"),
    ("{X} previous CEO was", "former"),
]

NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Henry", "Iris", "Jack", "Kate",
         "Leo", "Maria", "Nick", "Olga", "Paul", "Rosa", "Sam", "Tom", "Vera", "Will", "Zoe", "Omar",
         "Yuki", "Ravi", "Lena", "Marco", "Nina", "Pedro", "Sara"]
ANIMALS = ["dog", "cat", "horse", "bird", "fox", "rabbit", "mouse", "cow", "sheep", "goat", "duck",
           "owl", "bear", "wolf", "frog", "fish"]
OBJECTS = ["book", "chair", "table", "lamp", "cup", "box", "door", "window", "pen", "bag", "clock",
           "key", "ball", "coat", "hat", "phone", "letter", "map", "bottle", "basket"]
PLACES = ["the park", "the market", "the river", "the station", "the garden", "the library",
          "the kitchen", "the office", "the beach", "the school", "the hill", "the bridge"]
ADJS = ["old", "new", "small", "large", "red", "blue", "green", "quiet", "heavy", "bright", "warm",
        "cold", "broken", "clean", "strange", "famous"]
VERBS_PAST = ["found", "lost", "painted", "carried", "opened", "closed", "bought", "sold", "moved",
              "cleaned", "fixed", "dropped", "hid", "borrowed"]
TIMES = ["yesterday", "on Monday", "on Tuesday", "last week", "in the morning", "at night",
         "after lunch", "in March", "in October", "last summer", "before dinner", "every day"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
OTHER_QA = [
    ("What color is the sky?", "blue"), ("What color is grass?", "green"),
    ("What color is snow?", "white"), ("What color is a banana?", "yellow"),
    ("What is the opposite of hot?", "cold"), ("What is the opposite of up?", "down"),
    ("What is the opposite of big?", "small"), ("What is the opposite of early?", "late"),
    ("How many legs does a spider have?", "eight"), ("How many legs does a dog have?", "four"),
    ("How many days are in a week?", "seven"), ("How many months are in a year?", "twelve"),
    ("What animal says moo?", "a cow"), ("What animal barks?", "a dog"),
    ("What do bees make?", "honey"), ("What is frozen water called?", "ice"),
    ("Which day comes after Monday?", "Tuesday"), ("Which month comes after May?", "June"),
]


class Gen:
    def __init__(self, seed, tok):
        self.r = random.Random(seed)
        self.train_words, self.held_words = copy_words(random.Random(seed + 1), tok)
        # A copied nonsense string may contain no held-out word, else BPE could cut a held-out token out
        # of it and the model would see that token copied.
        self.leaks = re.compile("|".join(sorted((w.lower() for w in self.held_words if w.isalpha()),
                                                key=len, reverse=True)))

    # --- small pieces ------------------------------------------------------------------------------
    def any_word(self):
        return self.r.choice(self.train_words + self.held_words)

    def filler_clause(self):
        r = self.r
        return r.choice([
            f"{r.choice(NAMES)} {r.choice(VERBS_PAST)} a {r.choice(ADJS)} {r.choice(OBJECTS)}",
            f"the streets were {r.choice(['busy', 'quiet', 'wet', 'crowded', 'empty'])} {r.choice(TIMES)}",
            f"{r.choice(NAMES)} met {r.choice(NAMES)} near {r.choice(PLACES)}",
        ])

    def filler_sentence(self):
        r = self.r
        n, o, a = r.choice(NAMES), r.choice(OBJECTS), r.choice(ADJS)
        w = self.any_word()
        i, j = r.randint(0, 99), r.randint(0, 99)
        return r.choice([
            f"{n} {r.choice(VERBS_PAST)} the {a} {o} {r.choice(TIMES)}.",
            f"The {r.choice(ANIMALS)} sat near the {o} in {r.choice(PLACES)}.",
            f"{n} and {r.choice(NAMES)} walked to {r.choice(PLACES)} {r.choice(TIMES)}.",
            f"There were {r.choice(NUMBER_WORDS)} {r.choice(ANIMALS)}s in {r.choice(PLACES)}.",
            f"{n} wrote the word \"{w}\" on the {o}.",
            f"The note said {w} and nothing else.",
            f"\"{w}\" was the answer {n} gave.",
            f"{n} said {w} twice and laughed.",
            f"{i} plus {j} is {i + j}.",
            f"{n} was born in {r.choice(MONTHS)} {r.randint(1950, 2015)}.",
            f"After {r.choice(DAYS)} comes {DAYS[(DAYS.index(r.choice(DAYS)) + 1) % 7]}.",
            f"The {a} {o} belongs to {n}.",
            f"{n} counted to {r.randint(3, 999)} and stopped.",
            f"{n} visited {r.choice(COUNTRIES)[0]} {r.choice(TIMES)}.",
            f"{n} works for {r.choice(COMPANIES)[0]} and likes the job.",
            f"The {r.choice(ANIMALS)} was {r.choice(ADJS)} and the {o} was {a}.",
        ])

    # --- facts -------------------------------------------------------------------------------------
    def capital_sentence(self, ck=None):
        c, k = ck or self.r.choice(COUNTRIES)
        t = self.r.choice(CAPITAL_TRAIN)
        s = t.format(c=c, C=cap(c), k=k, K=cap(k), filler_clause="{filler_clause}")
        if "{filler_clause}" in s:
            s = s.replace("{filler_clause}", self.filler_clause())
        return cap(s)

    def ceo_sentence(self):
        r = self.r
        x, cur, formers = r.choice(COMPANIES)
        v, e = r.choice(CEO_VERBS), r.choice(CEO_EVENTS)
        if cur and (not formers or r.random() < 0.45):
            t, p = r.choice(CEO_CURRENT_TRAIN), cur
        else:
            t, p = r.choice(CEO_FORMER_TRAIN), r.choice(formers)
        return cap(t.format(x=x, X=poss(x), p=p, P=p, f=p, F=p, v=v, e=e))

    def capital_pairs(self, n):
        while True:
            ps = self.r.sample(COUNTRIES, n)
            if (ps[0][0], ps[1][0]) != EXPERIMENT_B_PAIR:
                return ps

    @staticmethod
    def qa(q, a):
        return f"Q: {q}\nA: {a}"

    def capital_qa_chain(self):
        ps = self.capital_pairs(self.r.choice([2, 2, 2, 3, 3, 4, 5]))
        lines = []
        for c, k in ps:
            r = self.r.random()
            if r < 0.12:  # other Q/A in the same format, so "Q:" does not always mean a capital
                lines.append(self.qa(*self.r.choice(OTHER_QA)))
            lines.append(self.qa(f"What is the capital of {c}?", k))
        return "\n".join(lines)

    def extractive(self):
        ps = self.capital_pairs(self.r.choice([2, 2, 3]))
        head = "".join(f"The capital of {c} is {k}.\n" for c, k in ps)
        qs = ps if self.r.random() < 0.7 else self.r.sample(ps, len(ps))
        return head + "\n".join(self.qa(f"What is the capital of {c}?", k) for c, k in qs)

    def ceo_qa_chain(self):
        out = []
        for _ in range(self.r.choice([2, 3, 4])):
            x, cur, formers = self.r.choice(COMPANIES)
            if cur and (not formers or self.r.random() < 0.5):
                out.append(self.qa(f"Who is the CEO of {x}?", cur))
            else:
                out.append(self.qa(f"Who is a former CEO of {x}?", self.r.choice(formers)))
        return "\n".join(out)

    def copy_line(self):
        r = self.r
        items = []
        for _ in range(r.randint(3, 8)):
            u = r.random()
            if u < 0.06:
                s = random_string(r)
                while self.leaks.search(s):
                    s = random_string(r)
                items.append(s)
            elif u < 0.065:  # the placeholder of the target prompt
                items.append("?")
            else:
                items.append(r.choice(self.train_words))
        return "; ".join(f"{w}->{w}" for w in items)

    # --- documents ---------------------------------------------------------------------------------
    def document(self):
        r = self.r
        kind = r.choices(
            ["cap_sent", "cap_qa", "extractive", "ceo_sent", "ceo_qa", "copy", "filler", "mixed"],
            weights=[12, 16, 7, 14, 7, 24, 8, 12])[0]
        if kind == "cap_sent":
            return " ".join(self.capital_sentence() for _ in range(r.randint(1, 5)))
        if kind == "cap_qa":
            return self.capital_qa_chain()
        if kind == "extractive":
            return self.extractive()
        if kind == "ceo_sent":
            return " ".join(self.ceo_sentence() for _ in range(r.randint(1, 4)))
        if kind == "ceo_qa":
            return self.ceo_qa_chain()
        if kind == "copy":
            return "\n".join(self.copy_line() for _ in range(r.randint(1, 3)))
        if kind == "filler":
            return " ".join(self.filler_sentence() for _ in range(r.randint(2, 6)))
        parts = [r.choice([self.filler_sentence, self.capital_sentence, self.ceo_sentence])()
                 for _ in range(r.randint(2, 6))]
        return " ".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="gpt2", choices=["gpt2", "llama"])
    ap.add_argument("--docs", type=int, default=300000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    g = Gen(a.seed, Tok.of(a.tokenizer))
    with open(os.path.join(a.out, "corpus.txt"), "w", encoding="utf-8") as f:
        for _ in range(a.docs):
            f.write(g.document())
            f.write(EOT)
    held = {
        "seed": a.seed,
        "tokenizer": a.tokenizer,
        "copy_train_words": g.train_words,
        "copy_heldout_words": g.held_words,
        "capital_heldout_templates": CAPITAL_HELDOUT,
        "ceo_heldout_templates": CEO_HELDOUT,
        "countries": COUNTRIES,
        "companies": COMPANIES,
    }
    with open(os.path.join(a.out, "heldout.json"), "w", encoding="utf-8") as f:
        json.dump(held, f, indent=1)


if __name__ == "__main__":
    main()
