#!/usr/bin/env bash
# free-port.sh [COUNT]: prints a TCP port on 127.0.0.1 such that it and the COUNT-1
# after it (default 1) have no listener. Ports are picked below the kernel's ephemeral
# range (32768 up): a client that keeps retrying a port in that range can be given it
# as its own local port and connect to itself, and then the server it waits for
# cannot bind (seen with the Elasticsearch mock, twice).
set -euo pipefail
n=${1:-1}
busy() { local i; for i in $(seq 0 $((n - 1))); do
  (echo > "/dev/tcp/127.0.0.1/$(($1 + i))") 2>/dev/null && return 0; done; return 1; }
p=$((20000 + RANDOM % 12000))
while busy "$p"; do p=$((p + n)); done
echo "$p"
