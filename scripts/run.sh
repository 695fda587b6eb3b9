#!/usr/bin/env bash
# One command to set everything up and run the app on one port in production mode:
#   ./scripts/run.sh            (then open http://localhost:3000, or the PORT you set)
# Options: --demo  fill the database with demo moderators and tickets first.
# Ctrl-C stops the app, its build tools and the embedded PostgreSQL (ticketing_app/serve.py).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ensure_venv
ensure_node_and_bun
source "$VENV/bin/activate"

exec python -m ticketing_app.cli run "$@"
