# Shared by scripts/run.sh and scripts/test.sh: sourced, not executed.
# Creates the virtualenv, installs pinned requirements, and provides Node >= 22 and bun (from the npm
# registry, into .tools/) when the system's are missing or too old. Never downloads from anywhere else.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_venv() {
  # ensure_venv [extra requirements files...]: requirements.txt always, plus the extra ones (test tools).
  # Each file has its own stamp (its hash), so a venv made by run.sh still gets the test tools from test.sh.
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv in .venv"
    "$PYTHON" -m venv "$VENV"
  fi
  local file stamp want
  for file in requirements.txt "$@"; do
    stamp="$VENV/.stamp-$(basename "$file")"
    want="$(sha256sum "$file" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      log "installing Python requirements from $file"
      "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$file"
      echo "$want" > "$stamp"
    fi
  done
}

node_major() { "$1" --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || echo 0; }

ensure_node_and_bun() {
  local need_node=1 need_bun=1
  if command -v node >/dev/null && [ "$(node_major node)" -ge 22 ] 2>/dev/null; then need_node=0; fi
  if command -v bun >/dev/null; then need_bun=0; fi
  if [ "$need_node" = 1 ] || [ "$need_bun" = 1 ]; then
    if [ ! -x "$TOOLS/node_modules/.bin/node" ] || [ ! -x "$TOOLS/node_modules/.bin/bun" ]; then
      command -v npm >/dev/null || { echo "npm is required to install Node 22 and bun" >&2; exit 1; }
      log "installing Node 22 and bun from the npm registry into .tools/"
      npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error node@22 bun >&2
    fi
    export PATH="$TOOLS/node_modules/.bin:$PATH"
  fi
}

# Reflex must not try the internet (bun download, version check, mirror probes): see platform notes.
export REFLEX_USE_SYSTEM_BUN=1
export REFLEX_CHECK_LATEST_VERSION=0
export REFLEX_HTTP_CLIENT_BIND_ADDRESS=0.0.0.0
export REFLEX_HOT_RELOAD_EXCLUDE_PATHS="$ROOT/var:$ROOT/.tools:$ROOT/.venv"
export NPM_CONFIG_REGISTRY="${NPM_CONFIG_REGISTRY:-$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)}"
export PYTHONUNBUFFERED=1
