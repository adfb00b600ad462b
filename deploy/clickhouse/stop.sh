#!/usr/bin/env bash
# Stop the private clickhouse instance: see deploy/engines.py (state in ${CEM_ENGINES_DIR:-/tmp/cem-engines}/clickhouse).
# Usage: deploy/clickhouse/stop.sh [--state-dir DIR] [--purge]
exec "${PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/../engines.py" stop clickhouse "$@"
