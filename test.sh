#!/usr/bin/env bash
# Run the whole test suite (installs what is missing first: venv, packages, the model, Debian
# chromium for the browser tests, LibreOffice Writer and poppler-utils for the Word export test).
# Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/scripts/bootstrap.sh"
bash "$root/scripts/ensure_test_tools.sh"
cd "$root"
exec .venv/bin/python -m pytest "$@"
