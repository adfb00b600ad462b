#!/usr/bin/env bash
# Start the private kafka instance: see deploy/engines.py (state in ${CEM_ENGINES_DIR:-/tmp/cem-engines}/kafka).
# Usage: deploy/kafka/start.sh [--state-dir DIR] [--prefix CEM_]   e.g. eval "$(deploy/kafka/start.sh)"
exec "${PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/../engines.py" start kafka "$@"
