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

fuzz:
	@echo "fuzz targets arrive with issue 6"

bench:
	@echo "benchmarks arrive with issue 7"
