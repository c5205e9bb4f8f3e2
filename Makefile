# Coffer — build, run and test. `make run` and `make test` are the Quick start.
GO       ?= go
BIN      := bin/coffer
FUZZTIME ?= 15s
PKGS     := ./...

.PHONY: asm asm-check build run test test-short bench bench-micro bench-load bench-soak bench-report bench-peers bench-scale bench-check bench-check-selftest fuzz lint clean

build:
	$(GO) build -o $(BIN) ./cmd/coffer

# Starts Coffer on its embedded defaults (./coffer-data, 127.0.0.1:7300,
# --region us-east-1), serving eu-west-1 as well: the README's AWS CLI
# walkthrough replicates a multi-Region key into it. cmd/coffer's
# TestReadmeCLI starts coffer serve with RUN_ARGS as written here.
RUN_ARGS ?= --regions us-east-1,eu-west-1
run: build
	./$(BIN) serve $(RUN_ARGS)

# The whole test suite, race detector on. Tests that need a system part
# (SoftHSM2, the AWS CLI) say so and skip when it is missing;
# .ci/run installs them all.
test:
	@echo "make test: the full suite CI runs, roughly 15-25 minutes on 2 cores:"
	@echo "  1. every package with the race detector (go test -race ./...; includes the AWS CLI"
	@echo "     walkthrough of the README, the crash tests that start real coffer processes, and the"
	@echo "     three-node cluster on a private PostgreSQL: cmd/coffer TestThreeNodeCluster, ~20 s)"
	@echo "  2. the allocation tests without -race"
	@echo "  3. the server's tests again on a SoftHSM2 (PKCS#11) root of trust, and on PostgreSQL"
	@echo "  4. builds and tests without cgo, with -tags purego, and for arm64 under qemu if installed"
	@echo "For quick iterations: make test-short (a few minutes: no race detector, no SoftHSM2 pass, no qemu)."
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	# Allocation tests, without -race (under it sync.Pool drops items at random).
	$(GO) test -count=1 -run 'Allocations' ./server ./engine/stream
	# The server's integration tests again, on a PKCS#11 (SoftHSM2) root of trust.
	COFFER_TEST_ROOT=pkcs11 $(GO) test -race -count=1 -timeout 10m ./server
	# And once more on the PostgreSQL store (a private server from the machine's binaries;
	# skips without them). Without -race to keep CI time down: the first pass ran it.
	COFFER_TEST_STORE=postgres $(GO) test -count=1 -timeout 10m ./server
	# A build without cgo has no PKCS#11 backend and says so.
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/coffer
	# The binary builds for the other systems Go targets (Linux-only parts are behind build tags).
	GOOS=darwin CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/coffer
	GOOS=windows CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/coffer
	CGO_ENABLED=0 $(GO) test -count=1 ./hsm
	# AES-GCM and base64 where the asm kernels do not run: the pure-Go build, and arm64
	# (the standard library's ARMv8 path) under qemu-user.
	$(GO) test -short -count=1 -tags purego ./asm/... ./engine/...
	@if command -v qemu-aarch64-static >/dev/null; then \
		echo "GOARCH=arm64 CGO_ENABLED=0 $(GO) test -short -count=1 -exec qemu-aarch64-static ./asm/... ./engine/..."; \
		GOARCH=arm64 CGO_ENABLED=0 $(GO) test -short -count=1 -exec qemu-aarch64-static ./asm/... ./engine/...; \
	else \
		echo "SKIP: the arm64 tests need qemu-aarch64-static (apt-get install qemu-user-static)"; \
	fi

# The quick loop while working: every package once, -short, without the race
# detector, the SoftHSM2 pass or qemu. Not what CI runs: that is make test.
test-short:
	$(GO) test -short -count=1 -timeout 15m $(PKGS)

# Micro-benchmarks and a short load run; raw results in bench/results/, then
# BENCHMARKS.md's tables and plots are regenerated from them.
bench: bench-micro build
	./$(BIN) bench run --duration 3s --warmup 1s --runs 1 --concurrency 32 --out bench/results/load.json
	$(MAKE) bench-report

bench-micro:
	@mkdir -p bench/results
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s $(PKGS) | tee bench/results/micro.txt

# The full server measurement: 3 runs of 10 s at concurrency 32 and 256, with
# a second Coffer started with --audit=false measured in the same run.
bench-load: build
	@mkdir -p bench/results
	./$(BIN) bench run --duration 10s --warmup 2s --runs 3 --concurrency 32,256 --compare-serve-arg=--audit=false --out bench/results/load-full.json
	$(MAKE) bench-report

# Bounded memory whatever the key count (issue 18): 3 minutes at concurrency 64
# of CreateKey and Encrypt alternating, sampling Coffer's RSS and the size of
# /metrics every 5 s. Rate limits off: AWS's CreateKey quota (50/s) would
# make it a measurement of the throttle.
bench-soak: build
	@mkdir -p bench/results
	./$(BIN) bench run --ops Mixed --duration 3m --warmup 5s --runs 1 --concurrency 64 --rss-every 5s --serve-arg=--throttle=false --out bench/results/load-soak-keys.json

# Coffer beside its peers on this machine, in one run (issue 26): Coffer in
# each audit mode, the bare fasthttp server and local-kms, each pinned to
# CPU 0, loaded from CPU 1 at concurrency 32 and 256. local-kms is installed
# from the Go module proxy at a pinned version into a cache outside the
# repository; no peer code enters it. AUDIT_MODES: on (the default flags),
# off, or --audit-sync values (skipped when the flag does not exist).
LOCAL_KMS_VERSION := v0.0.0-20260228092603-2a5e92d09ab6
PEERS_CACHE ?= $(HOME)/.cache/coffer-peers/$(LOCAL_KMS_VERSION)
PEERS_DURATION ?= 3s
AUDIT_MODES ?= on,off,interval:10ms
bench-peers: build
	@mkdir -p bench/results $(PEERS_CACHE)
	test -x $(PEERS_CACHE)/local-kms || GOBIN=$(PEERS_CACHE) $(GO) install github.com/nsmithuk/local-kms@$(LOCAL_KMS_VERSION)
	./$(BIN) bench peers --local-kms $(PEERS_CACHE)/local-kms --audit-modes $(AUDIT_MODES) --duration $(PEERS_DURATION) --warmup 1s --concurrency 32,256 --out bench/results/peers.json
	$(MAKE) bench-report

# Many keys (issue 26.2): a real server on bbolt filled with SCALE_KEYS keys
# (an alias each) through the API, then the store's size and the server's
# RSS per key, a restart, ListKeys/ListAliases paged to the end, DescribeKey
# and Encrypt on one key and spread over all, and the maintenance loop's
# rotation and deletion sweeps (SCALE_ARGS=--sweep-keys=N bounds them).
# make bench-scale SCALE_KEYS=1000000 is the full run (about 50 minutes of
# key creation on a 2-core VM at ~330 keys/s); SCALE_ARGS=--bulk makes the
# keys in process in 1000-key transactions instead (no aliases; about a
# minute for the million), and the 1M row was made so:
# make bench-scale SCALE_KEYS=1000000 SCALE_ARGS='--bulk --sweep-keys=10000'
# On PostgreSQL: SCALE_ARGS=--postgres-url=<url of an empty database>
# SCALE_OUT=bench/results/scale-postgres-$(SCALE_KEYS).json.
SCALE_KEYS ?= 10000
SCALE_ARGS ?=
SCALE_OUT ?= bench/results/scale-$(SCALE_KEYS).json
bench-scale: build
	@mkdir -p bench/results
	./$(BIN) bench scale --keys $(SCALE_KEYS) $(SCALE_ARGS) --out $(SCALE_OUT)
	$(MAKE) bench-report

bench-report:
	$(GO) run ./bench/report

# Fails when a key benchmark got significantly slower than the baseline commit.
bench-check:
	bench/check.sh

# Proves the gate fails on a deliberately slowed commit.
bench-check-selftest:
	bench/check_selftest.sh

# Runs every fuzz target under fuzz/ for FUZZTIME each (default 15s).
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) fuzz/run.sh

# Regenerates asm/gcm_amd64.s with the avo program in asm/_gen (its own module).
asm:
	cd asm/_gen && $(GO) run . -out ../gcm_amd64.s

# Fails when the committed assembly is not what the generator writes.
asm-check: asm
	git diff --exit-code asm/gcm_amd64.s

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
