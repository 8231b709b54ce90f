#!/usr/bin/env bash
# Installs the Debian packages whose programs are missing, and nothing else: used by test.sh and by the
# benchmark (which starts its own redis-server), so a fresh machine needs only the .NET SDK.
#
#   scripts/install-missing.sh program=package [program=package ...]
#   scripts/install-missing.sh redis-server=redis-server /usr/bin/chromium=chromium
#
# A program is a command name (looked up on PATH) or an absolute path, which may be a glob (one match must be
# executable), e.g. '/usr/lib/postgresql/*/bin/initdb'.
set -euo pipefail

need=()
for pair in "$@"; do
  program=${pair%%=*}
  package=${pair#*=}
  if [[ $program == /* ]]; then
    found=false
    for match in $program; do [ -x "$match" ] && found=true; done
    $found && continue
  else
    command -v "$program" >/dev/null 2>&1 && continue
  fi
  need+=("$package")
done
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing ${need[*]} (Debian packages)"
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "not root and no sudo: install ${need[*]} yourself (apt-get install ${need[*]})" >&2; exit 1; }
  sudo_cmd="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
