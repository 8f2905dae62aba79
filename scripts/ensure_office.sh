#!/usr/bin/env bash
# The Word export's test converts the .docx with Debian's LibreOffice Writer (headless, to PDF)
# and reads the PDF back with pdftotext (poppler-utils): a real word processor must open what
# python-docx wrote. Install the Debian packages when either program is missing.
set -euo pipefail
if command -v libreoffice >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: libreoffice or pdftotext is missing and apt-get is not available; the Word export test will fail" >&2
    exit 0
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd="sudo"
fi
packages="libreoffice-writer poppler-utils"
echo "==> installing Debian $packages for the Word export test"
# shellcheck disable=SC2086  # the package list is meant to split
$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >/dev/null ||
    { $sudo_cmd apt-get update >/dev/null && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >/dev/null; }
