#!/usr/bin/env bash
# bench/check.sh — the benchmark regression gate (`make bench-check`).
#
# Builds the test binaries of the key benchmarks at a baseline commit and at
# HEAD, runs them interleaved A/B COUNT times, compares with benchstat, and
# fails when a key benchmark's time per operation is slower by more than
# THRESHOLD percent with p < ALPHA. A failing benchmark is measured again
# (COUNT more rounds of just that one) and fails only if the regression
# reproduces, so that one noisy stretch on a shared machine does not fail CI.
#
# Baseline: $BASE, else the commit in bench/baseline, else HEAD~1. The
# commit under test is $HEAD_REV, else HEAD.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

THRESHOLD=${THRESHOLD:-10}
ALPHA=${ALPHA:-0.05}
COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-300ms}
BENCHSTAT=${BENCHSTAT:-golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da}

# Key benchmarks: package directory and the -bench pattern run in it.
KEYS=(
	"engine|^Benchmark(Seal|Open)\$/^size=1024\$"
	"kms|^BenchmarkService\$/^op=(Encrypt|Decrypt)\$/^size=1024\$"
	"server|^BenchmarkHandler\$/^op=(Encrypt|GenerateDataKey)\$"
	"server|^BenchmarkSigV4\$/^body=64\$"
	"asm|^BenchmarkSeal\$/^impl=[^/]+\$/^size=16384\$"
	"engine/stream|^Benchmark(Encrypt|Decrypt)\$/^mode=(sequential|parallel)\$/^size=1048576\$"
	"policy|^BenchmarkEvaluate\$"
)

base=${BASE:-}
if [ -z "$base" ] && [ -f bench/baseline ]; then base=$(grep -v '^#' bench/baseline | head -n1 | tr -d '[:space:]'); fi
if [ -z "$base" ]; then base=$(git rev-parse --verify -q HEAD~1 || git rev-parse HEAD); fi
base=$(git rev-parse "$base")
head=$(git rev-parse "${HEAD_REV:-HEAD}")
echo "bench-check: baseline $base, head $head, threshold ${THRESHOLD}%, count $COUNT, benchtime $BENCHTIME"

work=$(mktemp -d)
cleanup() {
	git worktree remove --force "$work/base" >/dev/null 2>&1 || true
	git worktree remove --force "$work/head" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
git worktree add -q --detach "$work/base" "$base"
git worktree add -q --detach "$work/head" "$head"

# build SIDE PKG: compile the package's test binary, or report it absent.
build() {
	local side=$1 pkg=$2
	[ -d "$work/$side/$pkg" ] || return 1
	(cd "$work/$side" && go test -c -o "$work/$side-${pkg//\//_}.test" "./$pkg" >/dev/null 2>&1)
}

runs=()
for key in "${KEYS[@]}"; do
	pkg=${key%%|*}
	if build base "$pkg" && build head "$pkg"; then
		runs+=("$key")
	else
		echo "bench-check: skipping $pkg (not buildable at both commits)"
	fi
done

# measure N PATTERN-LIST: interleave base and head N times.
measure() {
	local n=$1; shift
	: >"$work/base.txt"; : >"$work/head.txt"
	for ((i = 0; i < n; i++)); do
		local order="base head"
		((i % 2)) && order="head base"
		for key in "$@"; do
			local pkg=${key%%|*} pat=${key#*|}
			for side in $order; do
				(cd "$work/$side/$pkg" && "$work/$side-${pkg//\//_}.test" -test.run '^$' -test.bench "$pat" \
					-test.benchtime "$BENCHTIME" -test.count 1 -test.benchmem) >>"$work/$side.txt"
			done
		done
	done
}

# regressions: print "name delta" for each significant slowdown over the threshold.
regressions() {
	go run "$BENCHSTAT" -format csv "$work/base.txt" "$work/head.txt" 2>/dev/null | awk -F, -v thr="$THRESHOLD" -v alpha="$ALPHA" '
		$1 == "" && $2 != "" && NF >= 6 { unit = $2; next }
		unit == "sec/op" && $1 != "geomean" && $6 ~ /^\+/ {
			d = $6; sub(/^\+/, "", d); sub(/%$/, "", d)
			p = $7; sub(/^p=/, "", p); sub(/ .*/, "", p)
			if (d + 0 > thr + 0 && p + 0 < alpha + 0) print $1, "+" d "%", "p=" p
		}'
}

measure "$COUNT" "${runs[@]}"
go run "$BENCHSTAT" "$work/base.txt" "$work/head.txt" | tee "$work/benchstat.txt"
suspects=$(regressions)
if [ -z "$suspects" ]; then
	echo "bench-check: PASS — no key benchmark is more than ${THRESHOLD}% slower with significance"
	exit 0
fi
echo "bench-check: suspected regressions, measuring again:"
echo "$suspects"
measure "$COUNT" "${runs[@]}"
confirmed=$(regressions)
go run "$BENCHSTAT" "$work/base.txt" "$work/head.txt"
# Only benchmarks slow in both rounds count.
failed=$(comm -12 <(echo "$suspects" | awk '{print $1}' | sort) <(echo "$confirmed" | awk '{print $1}' | sort))
if [ -n "$failed" ]; then
	echo "bench-check: FAIL — slower by more than ${THRESHOLD}% (p < $ALPHA) twice:"
	echo "$confirmed" | grep -F -f <(echo "$failed")
	exit 1
fi
echo "bench-check: PASS — the suspected regressions did not reproduce"
