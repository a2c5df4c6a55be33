#!/usr/bin/env bash
# make fuzz: every native fuzz target in turn, FUZZTIME each (go test -fuzz
# takes one target per run). A failing input is written to the package's
# testdata/fuzz/<Target>/ and the run stops with the command that replays it.
#
# Go 1.26's fuzz coordinator can end a run that found nothing with a bare
# "context deadline exceeded" at the -fuzztime boundary (go.dev/issue/75804,
# fixed in Go 1.27): such a run wrote no input, so it is reported and the
# loop goes on. Any other failure stops it.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZMINIMIZE=${FUZZMINIMIZE:-30x}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $("$GO" list ./...); do
  dir=$("$GO" list -f '{{.Dir}}' "$pkg")
  for t in $("$GO" test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    corpus="$dir/testdata/fuzz/$t"
    before=$(ls "$corpus" 2>/dev/null | sort)
    echo "== $pkg $t ($FUZZTIME)"
    "$GO" test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZE" "$pkg" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] && continue
    new=$(comm -13 <(echo "$before") <(ls "$corpus" 2>/dev/null | sort))
    if [ -z "$new" ] && grep -qx '    context deadline exceeded' "$log" && [ "$(grep -c '^--- FAIL' "$log")" -eq 1 ]; then
      echo "note: $t ended with \"context deadline exceeded\" at -fuzztime and wrote no input: Go's fuzz coordinator race (go.dev/issue/75804), not a finding"
      continue
    fi
    echo "FAIL: $t failed (exit $rc)"
    for f in $new; do
      echo "  failing input: $corpus/$f"
      echo "  replay it with: $GO test -run '^$t/$f\$' $pkg"
    done
    exit 1
  done
done
