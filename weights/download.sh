#!/bin/sh
# Fetch a GPT-2 checkpoint from the Hugging Face hub into weights/<model>/:
#   weights/download.sh gpt2|gpt2-medium|gpt2-large|gpt2-xl
# Files arrive as <name>.part and are renamed when complete, so an interrupted run
# resumes where it stopped and a finished file is never fetched twice.
set -eu
case "${1:-}" in
gpt2 | gpt2-medium | gpt2-large | gpt2-xl) model=$1 ;;
*) echo "usage: $0 gpt2|gpt2-medium|gpt2-large|gpt2-xl" >&2; exit 2 ;;
esac
dir="$(cd "$(dirname "$0")" && pwd)/$model"
url="https://huggingface.co/openai-community/$model/resolve/main"
mkdir -p "$dir"
for f in config.json vocab.json merges.txt model.safetensors; do
    [ -f "$dir/$f" ] && continue
    echo "fetching $url/$f"
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 3 --connect-timeout 20 -C - -o "$dir/$f.part" "$url/$f"
    elif command -v wget >/dev/null 2>&1; then
        wget -c --connect-timeout=20 -O "$dir/$f.part" "$url/$f"
    else
        echo "$0: needs curl or wget" >&2; exit 1
    fi
    mv "$dir/$f.part" "$dir/$f"
done
# sizes and checksums, to compare with the hub's file listing
for f in config.json vocab.json merges.txt model.safetensors; do
    sum=$( (sha256sum "$dir/$f" 2>/dev/null || shasum -a 256 "$dir/$f") | cut -d' ' -f1)
    printf '%12s bytes  sha256 %s  %s\n' "$(wc -c <"$dir/$f" | tr -d ' ')" "$sum" "$model/$f"
done
