#!/usr/bin/env bash
# Installs what the real-service tests need on a fresh Debian bookworm machine (run as root):
# ClickHouse server 18.16 and PostgreSQL 15 from Debian, Chromium and its driver (the browser tests),
# a JRE and Maven, and the Kafka broker's jars
# from Maven Central into deploy/kafka/lib/, npm and Segment's analytics.js (tests/e2e/analytics_js). Idempotent and quiet; any failure stops it loudly.
# The services are never started here: deploy/engines.py starts private instances on free ports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive
APT_PACKAGES=(clickhouse-server clickhouse-client postgresql chromium chromium-driver)

die() { echo "provision: $*" >&2; exit 1; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

[[ $(id -u) -eq 0 ]] || die "run as root (it installs Debian packages)"

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || echo "$pkg"
  done
}

# Package postinst scripts would start the default clusters on the default ports (5432, 9000):
# a policy-rc.d answering 101 forbids that, and is removed again if we put it there.
forbid_service_starts() {
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
}

apt_install() {
  local wanted=("$@") missing
  mapfile -t missing < <(missing_packages "${wanted[@]}")
  ((${#missing[@]})) || return 0
  forbid_service_starts
  # Package lists that are missing or stale (an index naming files the mirror no longer has) are
  # refreshed once, then the install is tried again.
  apt_get_install "${missing[@]}" && return 0
  apt-get -qq update >/dev/null 2>&1 || die "apt-get update failed"
  apt_get_install "${missing[@]}" \
    || { tail -n 40 /tmp/cem-provision-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
}

apt_get_install() {
  apt-get -qq install -y --no-install-recommends -o Dpkg::Use-Pty=0 "$@" \
    >/tmp/cem-provision-apt.log 2>&1
}

# Belt and braces for machines where a service started anyway (or was enabled before).
keep_default_services_down() {
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now -q clickhouse-server.service postgresql.service 2>/dev/null || true
  fi
  local conf
  for conf in /etc/postgresql/*/*/start.conf; do
    [[ -e $conf ]] && ! grep -qx manual "$conf" && echo manual >"$conf"
  done
  return 0
}

fetch_kafka_jars() {
  local pom="$ROOT/deploy/kafka/pom.xml" lib="$ROOT/deploy/kafka/lib" stamp
  stamp="$lib/.fetched-$(sha256sum "$pom" | cut -c1-16)"
  [[ -e $stamp ]] && return 0
  rm -rf "$lib"
  mvn -q -B -f "$pom" dependency:copy-dependencies >/tmp/cem-provision-mvn.log 2>&1 \
    || { cat /tmp/cem-provision-mvn.log >&2; die "mvn dependency:copy-dependencies failed"; }
  touch "$stamp"
}

# Segment's official browser library (analytics.js), which a browser test loads into a shop's
# page: the exact version package-lock.json pins, from the npm registry.
fetch_analytics_js() {
  local dir="$ROOT/tests/e2e/analytics_js" stamp
  stamp="$dir/node_modules/.fetched-$(sha256sum "$dir/package-lock.json" | cut -c1-16)"
  [[ -e $stamp ]] && return 0
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/tmp/cem-provision-npm.log 2>&1 \
    || { cat /tmp/cem-provision-npm.log >&2; die "npm ci (analytics.js) failed"; }
  touch "$stamp"
}

tools=()
command -v java >/dev/null || tools+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || tools+=(maven)
command -v npm >/dev/null || tools+=(npm)
apt_install "${APT_PACKAGES[@]}" ${tools[@]+"${tools[@]}"}
keep_default_services_down
fetch_kafka_jars
fetch_analytics_js

command -v clickhouse-server >/dev/null || die "clickhouse-server not on PATH after install"
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || die "PostgreSQL 15 initdb missing after install"
echo "provision: ok (clickhouse-server, postgresql 15, kafka jars in deploy/kafka/lib, analytics.js)"
