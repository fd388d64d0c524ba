#!/usr/bin/env bash
# Installs Debian's MariaDB server and client, openssl (the cluster's TLS certificates) and
# prometheus (the stack's metrics and alerts: prometheus and promtool) when they are missing,
# and the packages named as arguments (bench/trace_picture.py asks for chromium).
# Our stack runs its own mariadbd with its own datadir, so the system
# service must not start (and hold port 3306) while the packages install.
set -euo pipefail

missing=()
for pkg in mariadb-server mariadb-client openssl prometheus "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
echo "installing ${missing[*]} from Debian"

# policy-rc.d exit 101 tells invoke-rc.d not to start services during the install.
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ $had_policy -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
fi

$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Without systemd/policy-rc.d a postinst may still have started it: stop it.
if pgrep -x mariadbd >/dev/null 2>&1 && [ -f /run/mysqld/mysqld.pid ]; then
    $SUDO kill "$(cat /run/mysqld/mysqld.pid)" 2>/dev/null || true
fi
echo "installed ${missing[*]}"
