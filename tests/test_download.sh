#!/bin/sh
# weights/download.sh against a hub mirror on disk (HF_ENDPOINT=file://...): a sharded
# repository, a single-file one, a resumed partial file, and the refusals (a shard the
# repository lacks, a shard path that climbs out of the folder, ids that are not OWNER/NAME).
# No network. Run from the repository root.
set -u
top=$(pwd)
hub="$top/build/hub"
out="$top/build/hub-out"
checks=0
failures=0
check() { # check "what" command...
    what=$1
    shift
    checks=$((checks + 1))
    if ! "$@" >/dev/null 2>&1; then
        failures=$((failures + 1))
        echo "FAIL: $what"
    fi
}
fails() { ! "$@"; }
dl() { HF_ENDPOINT="file://$hub" sh "$top/weights/download.sh" "$@"; }

if ! command -v curl >/dev/null 2>&1; then
    echo "SKIP: no curl (download.sh needs it)"
    echo "download: 0 checks, 0 failures"
    exit 0
fi
rm -rf "$hub" "$out"
repo() { mkdir -p "$hub/$1/resolve/main" && echo "$hub/$1/resolve/main"; }

r=$(repo acme/sharded)
echo '{"model_type": "llama"}' >"$r/config.json"
echo '{"version": "1.0"}' >"$r/tokenizer.json"
head -c 100000 /dev/urandom >"$r/model-00001-of-00002.safetensors"
head -c 777 /dev/urandom >"$r/model-00002-of-00002.safetensors"
cat >"$r/model.safetensors.index.json" <<'EOF'
{"metadata": {"total_size": 100777}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
 "b.weight": "model-00002-of-00002.safetensors", "c.weight": "model-00001-of-00002.safetensors"}}
EOF
check "a sharded repository downloads" dl acme/sharded "$out/sharded"
for f in config.json tokenizer.json model.safetensors.index.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors; do
    check "$f arrives intact" cmp "$r/$f" "$out/sharded/$f"
done
check "files the repository lacks are skipped" fails test -e "$out/sharded/vocab.json"
check "no partial or scratch files stay" fails sh -c "ls -a '$out/sharded' | grep -q -e '\.part$' -e curl-err"
check "a second run fetches nothing and succeeds" dl acme/sharded "$out/sharded"

r=$(repo acme/single)
echo '{"model_type": "gpt2"}' >"$r/config.json"
head -c 5000 /dev/urandom >"$r/model.safetensors"
mkdir -p "$out/single"
head -c 1234 "$r/model.safetensors" >"$out/single/model.safetensors.part"
check "a single-file repository downloads, resuming a partial file" dl acme/single "$out/single"
check "the resumed file is whole" cmp "$r/model.safetensors" "$out/single/model.safetensors"

r=$(repo acme/gappy)
echo '{}' >"$r/config.json"
echo '{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}' \
    >"$r/model.safetensors.index.json"
echo x >"$r/model-00001-of-00002.safetensors"
check "a shard the repository lacks is an error" fails dl acme/gappy "$out/gappy"

r=$(repo acme/climb)
echo '{}' >"$r/config.json"
echo '{"weight_map": {"a": "../../x.safetensors"}}' >"$r/model.safetensors.index.json"
check "a shard outside the folder is refused" fails dl acme/climb "$out/climb"

r=$(repo acme/binonly)
echo '{}' >"$r/config.json"
check "a repository without safetensors is an error" fails dl acme/binonly "$out/binonly"
check "a repository without config.json is an error" fails dl acme/nothing "$out/nothing"
for bad in "../x" "a/b/c" "x" ".hidden/y" "a/b c"; do
    check "\"$bad\" is refused as an id" fails dl "$bad" "$out/bad"
done
check "the refused ids made no folder" fails test -e "$out/bad"
check "gpt2 names map to openai-community/" sh -c "HF_ENDPOINT=file://$hub sh '$top/weights/download.sh' gpt2 '$out/g' 2>&1 | grep -q 'openai-community/gpt2 has no config.json'"

rm -rf "$hub" "$out"
echo "download: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
