#!/bin/sh
# make install into a scratch prefix: the files land where pkg-config says, the shared
# library exports every public ps_ function and nothing else, the README's example
# builds against it with pkg-config (its implementation #define removed, so the code
# comes from the library) and prints what the header-only build prints; make uninstall
# removes everything it installed. Run from the repository root after make.
set -u
top=$(pwd)
prefix=$(mktemp -d)
checks=0 failures=0
check() {
    what=$1
    shift
    checks=$((checks + 1))
    if ! "$@" >"$prefix/check.log" 2>&1; then
        sed "s/^/    /" "$prefix/check.log"
        failures=$((failures + 1))
        echo "FAIL: $what"
    fi
}
make -s install PREFIX="$prefix" >/dev/null
for f in include/patchscope.h bin/patchscope lib/libpatchscope.so lib/pkgconfig/patchscope.pc; do
    check "installs $f" test -e "$prefix/$f"
done
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
check "pkg-config knows the version of the header" \
    test "$(pkg-config --modversion patchscope)" = "$(sed -n 's/^#define PS_VERSION "\(.*\)"/\1/p' patchscope.h)"
nm -D --defined-only "$prefix/lib/libpatchscope.so" | awk '$2 ~ /^[TtDdBbRr]$/ { print $3 }' | sort >"$prefix/exported"
grep '^PSDEF' patchscope.h | sed 's/(.*//; s/.*[ *]//' | sort -u >"$prefix/declared"
check "the library exports exactly the public functions" cmp "$prefix/exported" "$prefix/declared"
awk '/^```c$/ { n++; on = n == 1; next } /^```$/ { on = 0 } on' README.md | grep -v '^#define PATCHSCOPE_IMPLEMENTATION' >"$prefix/example.c"
check "the README example builds against the library with pkg-config" \
    sh -c "cc -std=c99 \"$prefix/example.c\" -o \"$prefix/example\" \$(pkg-config --cflags --libs patchscope) -lm -Wl,-rpath,\"$prefix/lib\""
check "the README example runs on the library as on the header" \
    sh -c "\"$prefix/example\" build/models/mid >\"$prefix/out1\" && build/readme_example build/models/mid >\"$prefix/out2\" && cmp \"$prefix/out1\" \"$prefix/out2\""
check "the installed CLI runs" sh -c "\"$prefix/bin/patchscope\" --version | grep -q patchscope"
make -s uninstall PREFIX="$prefix" >/dev/null
rm -f "$prefix/check.log" "$prefix/exported" "$prefix/declared" "$prefix/example.c" "$prefix/example" "$prefix/out1" "$prefix/out2"
check "make uninstall leaves no file behind" test -z "$(find "$prefix" -type f -o -type l)"
cd "$top" && rm -rf "$prefix"
echo "install: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
