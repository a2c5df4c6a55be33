# echoconform — the two commands a newcomer needs are `make conform` (the main
# job) and `make test` (the tests; CI runs exactly this through .ci/run).

GO       ?= go
FUZZTIME ?= 30s

.PHONY: test race vet fmt conform fuzz bench

# The whole test suite: formatting, vet, and every test under the race detector.
test: vet fmt race

race:
	$(GO) test -race -timeout 20m ./...

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The main job: validate the built-in reference servers.
conform:
	$(GO) run ./cmd/echoconform

# Every native fuzz target in turn, FUZZTIME each (go test -fuzz takes one
# target per run). A crasher is written to the package's testdata/fuzz and
# the run stops with the command that replays it. Servers run in the fuzz
# process, so coverage is noisy: FUZZMINIMIZE keeps the engine from spending
# its time minimising inputs that are only "new" by scheduling.
FUZZMINIMIZE ?= 30x
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    if ! $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg; then \
	      echo "FAIL: $$t found a failing input; replay it with: go test -run '^$$t/' $$pkg (the input is in $$pkg's testdata/fuzz/$$t)"; \
	      exit 1; \
	    fi; \
	  done; \
	done

# The benchmarks of both references against an io.Copy baseline, then one
# table of every server (references, Python socketserver, socat) driven by
# the same load generator, with ratios to the baseline (bench/run.sh).
bench:
	@GO=$(GO) bench/run.sh
