#!/usr/bin/env bash
# Debian programs the tests drive for real, installed when missing:
# - Chromium (/usr/bin/chromium, with chromium-driver) for the browser tests, driven by Playwright;
#   Playwright's own browser download is never used;
# - LibreOffice Writer and pdftotext (poppler-utils): the Word export's test converts the .docx
#   headless to PDF and reads it back, so a real word processor must open what python-docx wrote;
# - PostgreSQL's server programs: the storage, crash and API tests run on it as well as on SQLite
#   (scripts/postgres.sh starts a throwaway cluster on 127.0.0.1);
# - HAProxy: the cluster test puts two app replicas behind it (bench/cluster.py).
set -euo pipefail
packages=""
[ -x /usr/bin/chromium ] || packages="$packages chromium chromium-driver"
{ command -v libreoffice >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1; } || packages="$packages libreoffice-writer poppler-utils"
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || packages="$packages postgresql"
{ command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; } || packages="$packages haproxy"
if [ -z "$packages" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning:$packages missing and apt-get is not available; the browser and Word export tests will fail" >&2
    exit 0
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd="sudo"
fi
echo "==> installing Debian$packages for the tests"
# shellcheck disable=SC2086  # the package list is meant to split
$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >/dev/null ||
    { $sudo_cmd apt-get update >/dev/null && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >/dev/null; }
