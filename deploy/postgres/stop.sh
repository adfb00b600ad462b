#!/usr/bin/env bash
# Stop the private postgres instance: see deploy/engines.py (state in ${CEM_ENGINES_DIR:-/tmp/cem-engines}/postgres).
# Usage: deploy/postgres/stop.sh [--state-dir DIR] [--purge]
exec "${PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/../engines.py" stop postgres "$@"
