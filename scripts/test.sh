#!/usr/bin/env bash
# One command to set everything up and run all tests plus lint:
#   ./scripts/test.sh [extra pytest args]
# Lints (ruff check, ruff format --check, mypy), then runs pytest. Installs the virtualenv and test tools,
# Node 22 + bun (for the browser tests' production build), axe-core (for the accessibility checks), and
# Debian's chromium and redis-server (the browser tests run the app with several workers sharing state in
# Redis), pgbouncer (the scale-out test runs web processes and workers through it) and dovecot-imapd (the IMAP
# polling tests) when they are missing. CI (.ci/run) calls exactly this.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ensure_venv requirements-test.txt
source "$VENV/bin/activate"

missing=()
[ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)  # tests/reliability/test_pgbouncer.py
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)  # tests/integration/test_inbound_servers.py (IMAP polling)
if [ -d tests/browser ]; then
  ensure_node_and_bun
  python -m tests.browser.axe >/dev/null  # the pinned axe-core from the npm registry, into .tools/
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/redis-server ] || missing+=(redis-server)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian's ${missing[*]} for the browser and scale-out tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  # Debian starts the packaged services (pgbouncer on 127.0.0.1:6432, dovecot on 143); the tests start their own
  # on free ports with their own configuration.
fi

log "ruff check, ruff format --check, mypy"
lint_paths=(ticketing_app tests alembic rxconfig.py scripts)
[ -d bench ] && lint_paths+=(bench)
ruff check "${lint_paths[@]}"
ruff format --check "${lint_paths[@]}"
mypy  # configured in pyproject.toml: all of ticketing_app, strict on services, jobs, ai, mail

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
