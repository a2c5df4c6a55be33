# echoconform — the two commands a newcomer needs are `make conform` (the main
# job) and `make test` (the tests; CI runs exactly this through .ci/run).

GO       ?= go
FUZZTIME ?= 30s

.PHONY: test short race full vet fmt conform fuzz bench long zoo-soak

# The whole test suite (CI runs exactly this): formatting, vet, every
# package's fast tests under the race detector, then every test in full
# without it (the whole mutant zoo, every third-party server, the hostile
# servers and clients). Packages run one per core at most (-p); inside the
# conformance package, full runs of the harness (zoo rows, references,
# third-party servers) three per core: they mostly wait. The full zoo under
# the race detector, and under busy loops, is make zoo-soak.
NPROC ?= $(shell nproc)

test: vet fmt race full

# The fast path for a contributor: every package's representative tests
# (each requirement against each reference, the checks' unit tests, a
# handful of mutants) in about a minute; each test says what -short left out.
short:
	$(GO) test -short ./...

race:
	$(GO) test -race -short -count=1 -p $(NPROC) -timeout 20m ./...

full:
	$(GO) test -count=1 -p $(NPROC) -timeout 20m ./...

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The main job: validate the built-in reference servers.
conform:
	$(GO) run ./cmd/echoconform

# Every native fuzz target in turn, FUZZTIME each (fuzz/run.sh: go test
# -fuzz takes one target per run). A failing input is written to the
# package's testdata/fuzz and the run stops with the command that replays
# it. Servers run in the fuzz process, so coverage is noisy: FUZZMINIMIZE
# keeps the engine from spending its time minimising inputs that are only
# "new" by scheduling.
FUZZMINIMIZE ?= 30x
fuzz:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZMINIMIZE=$(FUZZMINIMIZE) fuzz/run.sh

# The benchmarks of both references against an io.Copy baseline, then one
# table of every server (references, Python socketserver, socat) driven by
# the same load generator, with ratios to the baseline (bench/run.sh).
bench:
	@GO=$(GO) bench/run.sh

# The heavier hostile-client variants, beyond what CI runs: thousands of
# concurrent connections and connect/close storms of 10,000 (forking) and
# 50,000 (threading) connections; CI runs 1,000, 2,000 and 10,000.
long:
	$(GO) test -race -timeout 30m -count=1 -run 'Hostile' -v ./impl/forking ./impl/threading ./impl/eventloop -args -long

# The whole mutant zoo ZOO_N times (default 3) while one busy loop per core
# competes for the CPU: plain, under -race, and pinned to one core. Every
# row must give its exact verdicts the first time (conformance/zoo-soak.sh).
ZOO_N ?= 3
zoo-soak:
	@GO=$(GO) ZOO_N=$(ZOO_N) conformance/zoo-soak.sh
