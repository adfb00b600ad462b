#!/usr/bin/env bash
# Stop the private kafka instance: see deploy/engines.py (state in ${CEM_ENGINES_DIR:-/tmp/cem-engines}/kafka).
# Usage: deploy/kafka/stop.sh [--state-dir DIR] [--purge]
exec "${PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/../engines.py" stop kafka "$@"
