#!/bin/sh
# Fetch a checkpoint from the Hugging Face hub into weights/<name>/, as the hub ships it:
#
#   weights/download.sh gpt2                      # gpt2, gpt2-medium, gpt2-large, gpt2-xl
#   weights/download.sh EleutherAI/pythia-160m    # any hub id: owner/name
#   weights/download.sh TinyLlama/TinyLlama-1.1B-Chat-v1.0 [DIR]
#
# It fetches config.json, the tokenizer files the repository has (tokenizer.json,
# tokenizer_config.json, special_tokens_map.json, vocab.json, merges.txt), and the weights:
# model.safetensors.index.json with every shard it names, or else model.safetensors.
# Files arrive as <name>.part and are renamed when complete, so an interrupted run resumes
# where it stopped and a finished file is never fetched twice. The folder is DIR, or
# weights/<name> (the part of the id after the slash).
#
# Environment: HF_TOKEN (gated models such as meta-llama/*: sent as a bearer token),
# HF_ENDPOINT (a mirror; default https://huggingface.co), HF_REVISION (default main).
set -eu
usage() {
    echo "usage: $0 gpt2|gpt2-medium|gpt2-large|gpt2-xl|OWNER/NAME [DIR]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case "$1" in
gpt2 | gpt2-medium | gpt2-large | gpt2-xl) id="openai-community/$1" ;;
*/*) id=$1 ;;
*) usage ;;
esac
case "$id" in # an id is two path segments of the hub's characters, nothing that climbs
*/*/* | .* | */.* | *[!A-Za-z0-9._/-]*) echo "$0: \"$id\" is not a hub id (OWNER/NAME)" >&2; exit 2 ;;
esac
dir=${2:-"$(cd "$(dirname "$0")" && pwd)/${id#*/}"}
url="${HF_ENDPOINT:-https://huggingface.co}/$id/resolve/${HF_REVISION:-main}"
command -v curl >/dev/null 2>&1 || { echo "$0: needs curl" >&2; exit 1; }
mkdir -p "$dir"

# fetch FILE: 0 when it is there, 3 when the repository has no such file, else 1
fetch() {
    [ -f "$dir/$1" ] && return 0
    code=0
    status=$(curl -sSL --retry 3 --connect-timeout 20 -C - -w '%{http_code}' \
        ${HF_TOKEN:+-H "Authorization: Bearer $HF_TOKEN"} -o "$dir/$1.part" "$url/$1" 2>"$dir/.curl-err") || code=$?
    case "$code:$status" in
    0:2* | 0:000) mv "$dir/$1.part" "$dir/$1"; echo "fetched $1"; return 0 ;; # 000: a file:// mirror
    0:404 | 37:*) rm -f "$dir/$1.part"; return 3 ;;                          # 37: no such file://
    0:401 | 0:403) rm -f "$dir/$1.part"
        echo "$0: $id/$1 needs access (HTTP $status): accept its licence on the hub and set HF_TOKEN" >&2
        return 1 ;;
    0:416) mv "$dir/$1.part" "$dir/$1"; echo "fetched $1"; return 0 ;;       # resumed a complete file
    *) cat "$dir/.curl-err" >&2; echo "$0: could not fetch $url/$1 (curl exit $code, HTTP $status)" >&2; return 1 ;;
    esac
}

trap 'rm -f "$dir/.curl-err"' EXIT

# optional files: missing ones are fine
fetched="config.json"
fetch config.json || { [ $? -eq 3 ] && echo "$0: $id has no config.json: is it a model repository?" >&2; exit 1; }
for f in tokenizer.json tokenizer_config.json special_tokens_map.json vocab.json merges.txt; do
    if fetch "$f"; then fetched="$fetched $f"; else [ $? -eq 3 ] || exit 1; fi
done

# the weights: an index and its shards, or one file
if fetch model.safetensors.index.json; then
    shards=$(grep -o '"[^"]*\.safetensors"' "$dir/model.safetensors.index.json" | tr -d '"' | sort -u)
    [ -n "$shards" ] || { echo "$0: model.safetensors.index.json names no shards" >&2; exit 1; }
    for s in $shards; do
        case "$s" in */* | .*) echo "$0: the index names a shard outside the folder: $s" >&2; exit 1 ;; esac
        fetch "$s" || { echo "$0: the index names $s, which the repository lacks" >&2; exit 1; }
    done
    fetched="$fetched model.safetensors.index.json $shards"
else
    [ $? -eq 3 ] || exit 1
    if ! fetch model.safetensors; then
        echo "$0: $id has neither model.safetensors nor model.safetensors.index.json" \
            "(only PyTorch .bin files? patchscope.h reads safetensors)" >&2
        exit 1
    fi
    fetched="$fetched model.safetensors"
fi

# sizes and checksums, to compare with the hub's file listing
for f in $fetched; do
    sum=$( (sha256sum "$dir/$f" 2>/dev/null || shasum -a 256 "$dir/$f") | cut -d' ' -f1)
    printf '%12s bytes  sha256 %s  %s\n' "$(wc -c <"$dir/$f" | tr -d ' ')" "$sum" "$f"
done
