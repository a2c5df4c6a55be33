#!/usr/bin/env bash
# make zoo-soak: the whole mutant zoo N times in a row (ZOO_N, default 3)
# while one busy loop per core competes for the CPU, in three settings:
# plain, under the race detector, and pinned to one core (taskset -c 0) as
# a stand-in for a slow machine. Every row must give its exact verdicts on
# its first run: the script counts the rows that deviate (0 is the only
# good answer) and prints the wall time of each run. ZOO_SETTINGS picks
# some of the three settings (default: all).
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
N=${ZOO_N:-3}
SETTINGS=${ZOO_SETTINGS:-plain race pinned}
dir=$(mktemp -d)
busy=()
cleanup() {
  for p in "${busy[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

"$GO" test -c -o "$dir/plain.test" ./conformance || exit 2
case " $SETTINGS " in *" race "*) "$GO" test -race -c -o "$dir/race.test" ./conformance || exit 2 ;; esac

# One busy loop per core, for as long as the soak runs (ended by PID).
for _ in $(seq "$(nproc)"); do
  sh -c 'while :; do :; done' &
  busy+=($!)
done

total=0
summary=""
for setting in $SETTINGS; do
  bin="$dir/plain.test"
  pre=()
  case $setting in
    race) bin="$dir/race.test" ;;
    pinned) pre=(taskset -c 0) ;;
  esac
  for i in $(seq "$N"); do
    log="$dir/$setting-$i.log"
    start=$(date +%s)
    (cd conformance && "${pre[@]}" "$bin" -test.run '^TestMutants(InProcess)?$' -test.count=1 -test.v -test.timeout 60m) >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    dev=$(grep -cE '^    --- FAIL: TestMutants(InProcess)?/' "$log")
    rows=$(grep -cE '^    --- (PASS|FAIL): TestMutants(InProcess)?/' "$log")
    total=$((total + dev))
    line="$setting run $i: $rows rows, $dev deviating, exit $rc, ${took}s"
    echo "$line"
    summary+="$line"$'\n'
    if [ "$dev" -gt 0 ] || [ "$rc" -ne 0 ]; then
      grep -E '^    --- FAIL|FAILed|escaped|correct server|ERROR' "$log" | head -40
      cp "$log" "/tmp/zoo-soak-$setting-$i.log" && echo "(log kept in /tmp/zoo-soak-$setting-$i.log)"
    fi
    grep -m1 'mutation score' "$log"
  done
done
echo
echo "zoo-soak: $N runs per setting, $(nproc) busy loops; deviations in all: $total"
printf '%s' "$summary"
[ "$total" -eq 0 ]
