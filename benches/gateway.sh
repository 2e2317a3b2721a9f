#!/bin/sh
# Gateway benchmark: fctf's gateway vs nginx as a reverse proxy to the same upstream, and vs the
# upstream directly (wrk on loopback: requests/s, latency percentiles and CPU per request as
# ratios, alternating rounds, medians), then TCP relay throughput vs a direct connection.
# Prints figures; asserts nothing about speed.
#
#   benches/gateway.sh            the wrk comparison (FCTF_BENCH_ROUNDS, FCTF_BENCH_SECONDS,
#                                 FCTF_BENCH_QUICK=1 for small responses without limits only,
#                                 FCTF_BENCH_TCP_ONLY=1 for the TCP relay part alone)
#   benches/gateway.sh callgrind  user-space instructions per request, fctf vs nginx, counted by
#                                 callgrind (independent of the machine's load; needs valgrind)
#
# Needs nginx and wrk:  apt-get update && apt-get install -y nginx wrk valgrind
# Optional: FCTF_TEST_REDIS_URL=redis://127.0.0.1:6379 adds a variant with limits on Redis.
set -eu
cd "$(dirname "$0")/.."
test_name=gateway::tests::bench::bench_gateway_against_nginx_and_direct
if [ "${1:-}" = callgrind ]; then
    test_name=gateway::tests::bench::callgrind_instructions_against_nginx
fi
exec cargo test --release --lib "$test_name" -- --exact --ignored --nocapture --test-threads 1
