#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests use as real programs
# (redis-server, docker-compose to validate docker-compose.yml, chromium for the browser test) when missing, then runs `dotnet test`.
# Usage: ./test.sh [extra dotnet test arguments, e.g. --filter "FullyQualifiedName~Expiry"]
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]} (Debian packages)"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The packages' own services are not used: the fixtures start private servers on free ports.
exec dotnet test SessionGrains.sln -c Release --logger "console;verbosity=normal" "$@"
