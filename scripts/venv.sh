#!/usr/bin/env bash
# Creates the project's virtual environment (.venv) and installs cem into it, saying what it does.
#   scripts/venv.sh runtime   # what `make up` needs
#   scripts/venv.sh test      # plus the test tools (`make test`)
# Works with any Python >= 3.11 on the PATH (or PYTHON=...), including Debian's own python3, which
# refuses system-wide pip installs and may lack ensurepip (python3-venv): pip is then bootstrapped
# into the venv from its wheel on PyPI, run as a zip (pip's documented way to run without installing).
# VENV_WITHOUT_PIP=1 takes that path on any Python (the fresh-clone test uses it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
EXTRA="${1:-runtime}"
MIN_PYTHON="3.11"

say() { echo "cem setup: $*"; }
die() { echo "cem setup: $*" >&2; exit 1; }

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

find_python() {
  local candidate
  for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null && python_ok "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  die "needs Python >= $MIN_PYTHON (none found on the PATH; set PYTHON=/path/to/python3.11+)"
}

bootstrap_pip() {
  local tmp wheel_url wheel
  tmp="$(mktemp -d)"
  say "this Python has no ensurepip: fetching pip's wheel from PyPI to bootstrap it"
  wheel_url="$("$VENV/bin/python" - <<'EOF'
import json, urllib.parse, urllib.request
index = "https://pypi.org/pypi/pip/json"
release = json.load(urllib.request.urlopen(index, timeout=60))
wheel = next(u["url"] for u in release["urls"] if u["filename"].endswith(".whl"))
print(urllib.parse.urljoin(index, wheel))  # a mirror may answer with relative links
EOF
)" || die "could not reach PyPI to fetch pip (https://pypi.org/pypi/pip/json)"
  wheel="$tmp/${wheel_url##*/}"  # pip installs a wheel only under its own file name
  "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$wheel_url" "$wheel" 2>/dev/null || die "could not download $wheel_url"
  "$VENV/bin/python" "$wheel/pip" install --quiet --no-index "$wheel" \
    || die "bootstrapping pip from its wheel failed"
  rm -rf "$tmp"
}

create_venv() {
  local python
  python="$(find_python)"
  say "creating the virtual environment $VENV with $python ($("$python" -V 2>&1))"
  if [[ -n ${VENV_WITHOUT_PIP:-} ]] || ! "$python" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    "$python" -m venv --without-pip "$VENV" || die "$python -m venv failed"
  fi
}

ensure_venv() {
  if [[ -x $VENV/bin/python ]] && ! python_ok "$VENV/bin/python"; then
    die "$VENV holds a Python older than $MIN_PYTHON: remove it and run again"
  fi
  [[ -x $VENV/bin/python ]] || create_venv
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || bootstrap_pip
}

install_cem() {
  local spec="." stamp="$VENV/.cem-installed-$EXTRA"
  [[ $EXTRA == test ]] && spec=".[test]"
  if [[ -e $stamp && $stamp -nt $ROOT/pyproject.toml ]]; then
    say "$VENV is up to date ($EXTRA dependencies)"
    return 0
  fi
  say "installing cem and its $EXTRA dependencies into $VENV (the first time takes a few minutes)"
  (cd "$ROOT" && "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on \
    -e "$spec") || die "pip install -e '$spec' failed (see above)"
  touch "$stamp"
  say "done: $VENV/bin/cem is ready"
}

case $EXTRA in
  runtime | test) ;;
  *) die "usage: scripts/venv.sh runtime|test" ;;
esac
ensure_venv
install_cem
