#!/usr/bin/env bash
# The peer benchmark: sluice (the seed's query, default settings) against
# Benthos core with a franz-go input, whole processes on one broker in its
# own process, same records; prints wall time, peak RSS and the ratios.
#
#   bench/peers/run.sh                      # 2,000,000 × 210 B, 8 partitions, 3 rounds
#   bench/peers/run.sh --rounds 5 --json    # any peerbench flag (peerbench --help)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The release build (README, Dockerfile): pure Go, linked by Go's own linker.
(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/sluice" ./cmd/sluice)
(cd "$root/bench/peers" && go build -o "$tmp/peerbench" .)
uptime
"$tmp/peerbench" --sluice "$tmp/sluice" "$@"
