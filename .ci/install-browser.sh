#!/usr/bin/env bash
# Headless Chromium for the report test (tests/report/test_report_html.py): Debian's `chromium` package, installed only
# when missing, so running it again costs nothing. Needs root (CI) or sudo; says so instead of failing silently.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no chromium and no apt-get; install Chromium by hand for the HTML report test" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
