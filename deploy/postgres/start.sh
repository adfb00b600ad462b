#!/usr/bin/env bash
# Start the private postgres instance: see deploy/engines.py (state in ${CEM_ENGINES_DIR:-/tmp/cem-engines}/postgres).
# Usage: deploy/postgres/start.sh [--state-dir DIR] [--prefix CEM_]   e.g. eval "$(deploy/postgres/start.sh)"
here="$(dirname "${BASH_SOURCE[0]}")"
# The project's Python when it is installed, else python3.
venv="$here/../../.venv/bin/python"
[ -x "$venv" ] || venv=python3
exec "${PYTHON:-$venv}" "$(dirname "${BASH_SOURCE[0]}")/../engines.py" start postgres "$@"
