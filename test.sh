#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests use as real programs
# (redis-server, postgresql, docker-compose to validate docker-compose.yml, chromium for the browser test) when missing, then runs `dotnet test`.
# Usage: ./test.sh [extra dotnet test arguments, e.g. --filter "FullyQualifiedName~Expiry"]
set -euo pipefail
cd "$(dirname "$0")"

scripts/install-missing.sh redis-server=redis-server '/usr/lib/postgresql/*/bin/initdb=postgresql' docker-compose=docker-compose /usr/bin/chromium=chromium

# The packages' own services are not used: the fixtures start private servers on free ports.
exec dotnet test SessionGrains.sln -c Release --logger "console;verbosity=normal" "$@"
