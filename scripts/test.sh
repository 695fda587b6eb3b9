#!/usr/bin/env bash
# One command to set everything up and run all tests plus lint:
#   ./scripts/test.sh [extra pytest args]
# Installs the virtualenv and test tools, Node 22 + bun (for the browser tests' production build) and
# Debian's chromium when browser tests exist and it is missing. CI (.ci/run) calls exactly this.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ensure_venv requirements-test.txt
source "$VENV/bin/activate"

if [ -d tests/browser ]; then
  ensure_node_and_bun
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium for the browser tests"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
fi

log "ruff check"
lint_paths=(ticketing_app tests alembic rxconfig.py)
[ -d bench ] && lint_paths+=(bench)
ruff check "${lint_paths[@]}"

log "pytest"
set +e
python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
