#!/usr/bin/env bash
# Start the private clickhouse instance: see deploy/engines.py (state in ${CEM_ENGINES_DIR:-/tmp/cem-engines}/clickhouse).
# Usage: deploy/clickhouse/start.sh [--state-dir DIR] [--prefix CEM_]   e.g. eval "$(deploy/clickhouse/start.sh)"
exec "${PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/../engines.py" start clickhouse "$@"
