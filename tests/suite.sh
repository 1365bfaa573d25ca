#!/bin/sh
# make test's runner: every suite runs (a failing one does not stop the rest), each
# prints its own "NAME: N checks, M failures" line, and the last line sums them all as
# "N passed, M failed" (checks), the line CI tools look for.
#
#   sh tests/suite.sh run LOG NAME [VAR=VALUE...] COMMAND [ARGS...]
#   sh tests/suite.sh summary LOG          exits 1 when anything failed
#
# A suite that prints no such line counts as one check, passed when it exits 0; one
# that exits non-zero fails even when its checks passed (a crash, a sanitizer report).
set -u
mode=$1 log=$2
case "$mode" in
run)
    name=$3
    shift 3
    echo "== $name"
    out=$(env "$@" 2>&1)
    rc=$?
    [ -n "$out" ] && printf '%s\n' "$out"
    counts=$(printf '%s\n' "$out" | sed -n 's/^.*: \([0-9][0-9]*\) checks, \([0-9][0-9]*\) failures$/\1 \2/p' | tail -n 1)
    [ -n "$counts" ] || counts="1 $((rc != 0))"
    set -- $counts
    checks=$1 failures=$2
    if [ "$rc" -ne 0 ] && [ "$failures" -eq 0 ]; then failures=1; fi
    echo "$checks $failures $rc $name" >>"$log"
    [ "$rc" -eq 0 ] || echo "!! $name exited with status $rc"
    ;;
summary)
    awk '{ c += $1; f += $2; if ($3 != 0) { $1 = $2 = $3 = ""; bad = bad "\n  " $0 } }
         END { if (bad != "") print "failed suites:" bad; printf "%d passed, %d failed\n", c - f, f; exit f > 0 }' "$log"
    ;;
*) echo "usage: $0 run LOG NAME COMMAND... | summary LOG" >&2; exit 2 ;;
esac
