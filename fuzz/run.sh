#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ for FUZZTIME each.
#
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded"
# when -fuzztime runs out while a worker is between inputs on a loaded
# machine (golang/go#75804, fixed in Go 1.27). That failure writes no
# reproducer; a target that fails that way, and only that way, is run once
# more. Any other failure — a written failing input, a panic, a t.Error —
# fails at once.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-15s}

bare_deadline() {
	grep -q 'context deadline exceeded' "$1" &&
		! grep -Eq 'Failing input written|panic:|_test\.go:[0-9]+:|fuzz: minimizing' "$1"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $($GO list ./fuzz/...); do
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		for attempt in 1 2; do
			echo "== $pkg $target ($FUZZTIME)"
			if $GO test -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1 | tee "$log"; then
				break
			fi
			if [ "$attempt" = 1 ] && bare_deadline "$log"; then
				echo "== $target: the coordinator's deadline race (golang/go#75804), no failing input; once more"
				continue
			fi
			exit 1
		done
	done
done
