#!/usr/bin/env bash
# Installs whatever is missing for the service: Debian packages for PostGIS, Redis (and Chromium
# for browser tests when WITH_BROWSER=1), the Python virtual environment with the project, and the
# front-end packages from npm. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_VERSION=15
need_pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if [ -z "${DATABASE_URL:-}" ]; then
  for p in "postgresql-$PG_VERSION" "postgresql-$PG_VERSION-postgis-3"; do have_pkg "$p" || need_pkgs+=("$p"); done
fi
if [ -z "${REDIS_URL:-}" ]; then
  command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
fi
if [ "${WITH_BROWSER:-0}" = "1" ] && [ ! -x /usr/bin/chromium ]; then need_pkgs+=(chromium); fi
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
have_pkg fonts-wqy-microhei || need_pkgs+=(fonts-wqy-microhei)  # Chinese district names on the maps

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing ${need_pkgs[*]}." >&2
    echo "setup: install them (Debian: apt-get install ${need_pkgs[*]}), or set DATABASE_URL / REDIS_URL" >&2
    echo "setup: to existing PostgreSQL+PostGIS and Redis servers." >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # Debian starts a system Redis and a default cluster; we never use them (own ports, own data).
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: creating the Python environment (.venv)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

web=dispatch/web
if [ -f "$web/package.json" ]; then
  wstamp="$web/node_modules/.installed-$(sha256sum "$web/package.json" | cut -c1-16)"
  if [ ! -f "$wstamp" ]; then
    echo "setup: installing front-end packages from npm"
    (cd "$web" && npm install --no-audit --no-fund --silent)
    touch "$wstamp"
  fi
fi
