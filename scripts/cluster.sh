#!/usr/bin/env bash
# The whole school set on loopback for development: two app replicas behind HAProxy, sharing a
# throwaway PostgreSQL, a Chroma server and llama.cpp's OpenAI-compatible server (bench/cluster.py).
#   scripts/cluster.sh up [RUN_DIR] [REPLICAS]   start it; prints the balancer's URL and the parts
#   scripts/cluster.sh down [RUN_DIR]            stop every part
# Set CLUSTER_LLM=extractive for a set without the model.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${2:-$root/.cluster}"
case "${1:-}" in
up) exec "$root/.venv/bin/python" -m bench.cluster up --dir "$run_dir" --replicas "${3:-2}" --llm "${CLUSTER_LLM:-server}" ;;
down) exec "$root/.venv/bin/python" -m bench.cluster down --dir "$run_dir" ;;
*)
    echo "usage: $0 up [RUN_DIR] [REPLICAS] | down [RUN_DIR]" >&2
    exit 2
    ;;
esac
