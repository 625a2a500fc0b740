#!/usr/bin/env bash
# Installs what the end-to-end suites (tests/e2e_js) need: Node and npm, the npm packages of
# examples/package.json (resclient for the pages, ws and playwright-core for the tests), and
# Debian's chromium for the headless browser tests. Called by .ci/run before pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root_apt() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo ".ci/e2e-js.sh: need $* (install them, or run as root on Debian)" >&2
    return 1
  fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  as_root_apt nodejs npm
fi
if [ ! -x /usr/bin/chromium ]; then
  as_root_apt chromium
fi
(cd examples && npm install --no-audit --no-fund --loglevel=error)
echo ".ci/e2e-js.sh: node $(node --version), $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium ?')"
