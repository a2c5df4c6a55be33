#!/bin/sh
# bench/run.sh is `make bench`: the go test benchmarks of the references
# (each beside an io.Copy baseline in the same run; the eventloop's beside
# the threading reference too), then the comparison
# table of every server, references included, each a process of its own,
# driven by internal/load, then the footprint of idle connections
# (bench/footprint). Bounded: about 3 minutes on 2 cores.
# Knobs (environment):
#   BENCHTIME  go test -benchtime of the reference benchmarks (default 0.5s)
#   COUNT      go test -count; from 2 on, benchstat summarises (default 1)
#   ROUNDS     rounds of the table; a figure is their median (default 5)
#   DURATION   measured time of a figure in the table (default 0.6s)
set -eu
GO=${GO:-go}
BENCHTIME=${BENCHTIME:-0.5s}
COUNT=${COUNT:-1}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-0.6s}
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

$GO build -o "$tmp/baseline" ./bench/baseline
$GO build -o "$tmp/echoserver" ./cmd/echoserver
$GO build -o "$tmp/echochild" ./cmd/echochild # echoserver -model fork finds it beside itself
$GO build -o "$tmp/table" ./bench/table
$GO build -o "$tmp/footprint" ./bench/footprint

echo "== go test benchmarks, in-process (benchtime $BENCHTIME, count $COUNT): the references and the io.Copy baseline"
timeout 600 $GO test -run '^$' -bench 'Stream|Exchange|Spawn|Footprint' -benchtime "$BENCHTIME" -count "$COUNT" \
	./impl/threading ./impl/forking ./impl/eventloop | tee "$tmp/impl.txt"
if [ "$COUNT" -gt 1 ]; then
	benchstat=$(command -v benchstat || true)
	if [ -z "$benchstat" ] && GOBIN="$tmp" $GO install golang.org/x/perf/cmd/benchstat@latest 2>/dev/null; then
		benchstat="$tmp/benchstat"
	fi
	if [ -n "$benchstat" ]; then
		echo "== benchstat -col /server: each server beside the baseline of the same run"
		"$benchstat" -col /server "$tmp/impl.txt" || true
	else
		echo "(benchstat is not installed and could not be fetched: no summary)"
	fi
fi

echo
echo "== every server as a process of its own, driven by the same load generator"
timeout 600 "$tmp/table" -bin "$tmp" -rounds "$ROUNDS" -duration "$DURATION"

echo
echo "== footprint: idle connections held by each reference (echoserver), clients in processes of their own"
timeout 600 "$tmp/footprint" -bin "$tmp"
