#!/usr/bin/env bash
# Install everything tabchat's tests need on a fresh Debian machine: Chromium and Firefox ESR
# from apt (Playwright's own browser downloads cannot work offline; Playwright drives the stock
# Firefox over WebDriver BiDi, see playwright.config.ts), redis-server and PostgreSQL
# from apt (the cluster tests start their own private instances of both; nothing is left
# running), python3, make and g++ (better-sqlite3, the server's embedded store, compiles
# from source when no prebuilt binary can be downloaded), and the npm packages.
# Idempotent: only what is missing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/firefox-esr ] || need_apt+=(firefox-esr)
[ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need_apt+=(postgresql)
command -v python3 >/dev/null || need_apt+=(python3)
command -v make >/dev/null || need_apt+=(make)
command -v g++ >/dev/null || need_apt+=(g++)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} with apt"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
/usr/bin/chromium --version
/usr/bin/firefox-esr --version
/usr/bin/redis-server --version
ls -d /usr/lib/postgresql/*/bin
python3 --version
make --version | sed -n 1p
g++ --version | sed -n 1p

echo "setup: npm ci"
npm ci --no-audit --no-fund
