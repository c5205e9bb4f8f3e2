# Coffer — build, run and test. `make run` and `make test` are the Quick start.
GO       ?= go
BIN      := bin/coffer
FUZZTIME ?= 15s
PKGS     := ./...

.PHONY: build run test bench fuzz lint clean

build:
	$(GO) build -o $(BIN) ./cmd/coffer

# Starts Coffer on its embedded defaults: ./coffer-data, 127.0.0.1:7300.
run: build
	./$(BIN) serve

# The whole test suite, race detector on. Tests that need a system part
# (SoftHSM2, PostgreSQL, the AWS CLI) say so and skip when it is missing;
# .ci/run installs them all.
test:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Runs every fuzz target under fuzz/ for FUZZTIME each (default 15s).
fuzz:
	@set -e; for pkg in $$($(GO) list ./fuzz/...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
