#!/bin/sh
# Gateway benchmark: fctf's gateway vs nginx as a reverse proxy to the same upstream, and vs the
# upstream directly (wrk on loopback: requests/s and latency percentiles as ratios), then TCP
# relay throughput vs a direct connection. Prints figures; asserts nothing about speed.
#
# Needs nginx and wrk:  apt-get update && apt-get install -y nginx wrk
# Optional: FCTF_TEST_REDIS_URL=redis://127.0.0.1:6379 adds a variant with limits on Redis.
set -eu
cd "$(dirname "$0")/.."
exec cargo test --release --lib gateway::tests::bench -- --ignored --nocapture --test-threads 1
