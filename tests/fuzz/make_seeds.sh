#!/usr/bin/env bash
# Writes the seed corpora in tests/fuzz/seeds/ from the micro models build/gen_models
# writes (make fuzz-seeds runs it). The seeds are committed; rerun this after changing
# a harness's input format or gen_models' micro models. Files named regress-* are
# findings of the fuzzers, kept as seeds so every run replays them: this leaves them.
# The family-* safetensors seeds (micro Llama, Mistral, Gemma, NeoX, GPT-J checkpoints with their
# configs) come from tools/reference/families_ref.py (its third argument); this leaves them too.
set -euo pipefail
cd "$(dirname "$0")/../.."
M=build/models
S=tests/fuzz/seeds
mkdir -p "$S/json" "$S/safetensors" "$S/forward" "$S/vocab" "$S/encode"

hex() { printf "$(echo "$1" | tr -d ' \n' | sed 's/\(..\)/\\x\1/g')"; }
header() { # the JSON header of a .safetensors file
    local n
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    tail -c +9 "$1" | head -c "$n"
}

# json: configs, safetensors headers, and the grammar's corners
cp $M/micro/config.json $S/json/config
header $M/micro/model.safetensors >$S/json/header
header $M/micro-meta.safetensors >$S/json/header-meta
printf '{"a":[1,-2.5e3,0.125,1E+2,true,false,null,{"b":"\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/"}],"c":{},"d":[]}' >$S/json/grammar
printf '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]' >$S/json/nested
printf '{"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"__metadata__":{"n_head":"4","format":"pt"}}' >$S/json/empty-tensor

# safetensors: an options byte, config.json and a NUL when bit 0 is set, the file
{ hex 01; cat $M/micro/config.json; hex 00; cat $M/micro/model.safetensors; } >$S/safetensors/micro-config
{ hex 00; cat $M/micro/model.safetensors; } >$S/safetensors/micro-bare
{ hex 01; cat $M/micro-f16/config.json; hex 00; cat $M/micro-f16/model.safetensors; } >$S/safetensors/f16-prefix
{ hex 05; cat $M/micro-f16/config.json; hex 00; cat $M/micro-f16/model.safetensors; } >$S/safetensors/f16-to-bf16
{ hex 00; cat $M/micro-meta.safetensors; } >$S/safetensors/bf16-meta
{ hex 02; cat $M/micro-meta.safetensors; } >$S/safetensors/bf16-to-f32

# forward: programs for tests/fuzz/forward.c (opcode, then its argument bytes)
# forward, a pattern watcher on every layer, generate, capture resid_post and logits
hex '00  0007011153052a00  05050000000000  000500010203  0805050405060 7
     090602010c000e00 08090a0b0c0d' >$S/forward/hooks
# source, inspect with a patch from it, grid with probabilities, lens, replay, embedding
hex '01  0a00080100 0c 0f 1153052a005f3d1d
     0b0001010e 00000c0000 0603 010203040506
     0c000e0001000 10c 0002 06 0708090a0b0c
     0d0002  0e04 0102030405  0f05' >$S/forward/scope
# batch, fork, batch on the fork, truncate, a hook that stops the pass, clear, reset
hex '00  0102 0005 0303 010203040506 01
     02000502  0101050307 0800  030001  000600090a0b0c
     050b010201000 0  00040 10 2  07  04' >$S/forward/sequences
# hooks that edit the pattern and overwrite a state, one that re-enters the API, then
# sources at attn_out, a naive grid with an affine map and a progress callback
hex '01  0505020300 0000  050c000100 0301  0501010400 0000
     000a03 1153052a005f3d1d
     0a01080200 07 0f10 1153052a005f3d1d
     0c010f0001000 10c 01 1c 06 0708090a0b0c
     0b0000 40 07010c 02 0502 0102030405' >$S/forward/edits
# vocab: vocab.json, a NUL, merges.txt: a micro tokenizer (256 bytes, 5 merges,
# <|endoftext|>) in GPT-2's byte alphabet, with raw UTF-8 and with \u escapes
for ascii in 0 1; do
    /usr/bin/python3 - "$ascii" >$S/vocab/micro-$ascii <<'PY'
import json, sys
bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
cs = bs[:]
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + len(cs) - 188)
vocab = {chr(c): i for i, c in enumerate(cs)}
merges = [("\u0120", "t"), ("h", "e"), ("\u0120t", "he"), ("i", "n"), ("\u0120", "a")]
for a, b in merges:
    vocab[a + b] = len(vocab)
vocab["<|endoftext|>"] = len(vocab)
sys.stdout.write(json.dumps(vocab, ensure_ascii=sys.argv[1] == "1") + "\0")
sys.stdout.write("#version: 0.2\n" + "".join(a + " " + b + "\n" for a, b in merges))
PY
done

# encode: a flags byte (bit 0 special tokens, the rest a cap to try), then the text
{ hex 00; printf "Hello world! It's 2024, isn't it?"; } >$S/encode/ascii
{ hex 07; printf '  leading\n\n\ttabs   and spaces  \r\n'; } >$S/encode/spaces
{ hex 01; printf '<|endoftext|>The end<|endoftext|>'; } >$S/encode/special
{ hex 00; printf 'Zażółć gęślą jaźń, 日本語のテキスト 🎉👍🏽 ١٢٣'; } >$S/encode/unicode
{ hex 04; printf 'bad \xff\xfe\xc3( \xed\xa0\x80 \xf4\x90\x80\x80 cut \xe6\x97'; } >$S/encode/invalid-utf8
{ hex 00; printf '1234567890 3.14159 +-*/ ...!!! ???'; } >$S/encode/digits
ls -l $S/*

# sae: cfg.json, a NUL, sae_weights.safetensors (the SAEs of tools/reference/make_sae_goldens.py)
mkdir -p $S/sae
for d in tests/data/sae/*/; do
    { cat "$d/cfg.json"; hex 00; cat "$d/sae_weights.safetensors"; } >$S/sae/$(basename "$d")
done

# cvec: control-vector GGUFs, a foreign one (tools/reference/make_control_vector_fixture.py) and one
# patchscope wrote (test_interv leaves it in build/cv.gguf)
mkdir -p $S/cvec
cp tests/data/controlvector/foreign.gguf $S/cvec/foreign
[ -f build/cv.gguf ] && cp build/cv.gguf $S/cvec/written
