"""Writes a byte-level BPE tokenizer.json with GPT-2's vocabulary and merges (weights/vocab.json,
weights/merges.txt; MIT, OpenAI), so the file can be committed, in one of two layouts:

  llama3   Llama 3's tokenizer.json (its Split pattern then ByteLevel without a regex, ignore_merges,
           a <|begin_of_text|> template), in place of Meta's vocabulary
  gpt2     GPT-2's own tokenizer.json on the hub (ByteLevel with its regex, no template)

Hugging Face's tokenizers is the oracle on them (tools/gen_hf_tokenizer_fixtures.js NAME FILE).

    /usr/bin/python3 tools/make_bytelevel_tokenizer.py weights llama3 tests/data/hf_tokenizers/bytelevel/tokenizer.json
    /usr/bin/python3 tools/make_bytelevel_tokenizer.py weights gpt2 tests/data/hf_tokenizers/gpt2/tokenizer.json
"""
import json
import sys

# Llama 3's pre-tokenizer pattern, as its tokenizer.json spells it
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")


def main():
    src, layout, out = sys.argv[1], sys.argv[2], sys.argv[3]
    vocab = json.load(open(f"{src}/vocab.json", encoding="utf-8"))
    merges = [ln for ln in open(f"{src}/merges.txt", encoding="utf-8").read().split("\n")[1:] if ln]
    n = len(vocab)
    special = lambda i, s: {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(n - 1, "<|endoftext|>"), special(n, "<|begin_of_text|>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [n], "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }
    if layout == "gpt2":
        tok["added_tokens"] = tok["added_tokens"][:1]
        tok["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        tok["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
        tok["decoder"]["add_prefix_space"] = False
        tok["model"]["ignore_merges"] = False
    with open(out, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
