#!/usr/bin/env bash
# Start the Debate Assistant web app on http://127.0.0.1:7860 (installs what is missing first).
# Extra arguments go to 'da app', e.g. ./run.sh --port 8080
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/da" app "$@"
