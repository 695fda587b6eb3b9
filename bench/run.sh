#!/usr/bin/env bash
# `make bench` / `./bench/run.sh [--quick] [--only intake,pipeline,recovery,routing,pages,inbound,attachments,triage,search]`: sets up what the app
# needs (the pinned virtualenv, Node 22 + bun for the production build) exactly as scripts/run.sh does,
# then runs `python -m bench`. Benchmarks never fail on a number: the exit status only says the run worked.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"

ensure_venv
ensure_node_and_bun
exec "$VENV/bin/python" -m bench "$@"
