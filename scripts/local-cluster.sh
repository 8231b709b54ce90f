#!/usr/bin/env bash
# Runs the production topology on this machine: redis-server with AOF and N silo processes on 127.0.0.1,
# each with its own silo, gateway and HTTP port. Ctrl+C stops everything it started.
#
#   scripts/local-cluster.sh [silos=3]
#   curl -s -X POST localhost:5081/sessions -H 'content-type: application/json' -d '{"userId":"alice"}'
#
# Needs the .NET SDK; installs redis-server (Debian package) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-missing.sh redis-server=redis-server
silos=${1:-3}
redis_port=${REDIS_PORT:-6390}
work=$(mktemp -d -t sessiongrains-local-XXXX)
pids=()

# Silos first, Redis last: a stopping silo still writes its sessions' last access and leaves the membership table.
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
  echo "stopped; logs and Redis data in $work"
}
trap stop EXIT
trap 'exit 130' INT TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync everysec >"$work/redis.log" 2>&1 &
redis_pid=$!

dotnet build Silo -c Release -v quiet >/dev/null
export SessionStore__Redis="127.0.0.1:$redis_port"
export SessionStore__TokenKeys="${SessionStore__TokenKeys:-local:$(head -c 32 /dev/urandom | base64)}"
export SessionStore__AdvertisedAddress=127.0.0.1
export SessionStore__AllowOpenApi=true # every port is on loopback; a production silo needs SessionStore__ApiKey
for i in $(seq 1 "$silos"); do
  SessionStore__SiloPort=$((11110 + i)) SessionStore__GatewayPort=$((30000 + i)) \
    dotnet Silo/bin/Release/net10.0/SessionGrains.Silo.dll --urls "http://127.0.0.1:$((5080 + i))" >"$work/silo$i.log" 2>&1 &
  pids+=($!)
  echo "silo $i: http://127.0.0.1:$((5080 + i)) (gateway $((30000 + i)))"
done

echo "Redis on 127.0.0.1:$redis_port; Ctrl+C to stop"
wait
