#!/usr/bin/env bash
# Installs the servers the fleet tests start (tests/fleet/): Debian's redis-server (Redis OSS 7;
# bookworm has no valkey-server package) and postgresql. Idempotent: does nothing when both are
# there. The tests start their own instances on free loopback ports in temporary directories,
# never the system services (the packages' own services are not started here).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
{ [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; } || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "ci_services: need ${need[*]} and cannot install them (not root, no sudo)" >&2; exit 1; }
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d 101: the packages' postinst must not start system-wide servers on the CI machine.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "ci_services: installed ${need[*]}"
