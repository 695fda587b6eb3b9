#!/usr/bin/env bash
# One command to set everything up and run the app on one port in production mode:
#   ./scripts/run.sh            (then open http://localhost:3000)
# Options: --demo  fill the database with demo moderators and tickets first.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ensure_venv
ensure_node_and_bun
source "$VENV/bin/activate"

python -m ticketing_app.cli prestart
if [ "${1:-}" = "--demo" ]; then
  python -m ticketing_app.cli demo
fi
log "starting the app on http://localhost:${PORT:-3000} (Ctrl-C to stop)"
exec reflex run --env prod --single-port
