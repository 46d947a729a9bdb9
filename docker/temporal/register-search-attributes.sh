#!/usr/bin/env bash
# Creates a Temporal namespace when it is missing and registers custom search attributes in it; safe to run any
# number of times, and from several places at once. docker-compose.yml runs it (temporalio/admin-tools image), and
# so does the production-topology test, with the same environment and arguments.
# Usage: register-search-attributes.sh <Name>=<Type>...   (e.g. TenantId=Keyword)
# Environment: TEMPORAL_ADDRESS (host:port of the frontend), TEMPORAL_NAMESPACE, TEMPORAL_NAMESPACE_RETENTION
# (of a namespace it creates; default 168h). Needs the `temporal` CLI on PATH.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 <Name>=<Type>..." >&2
  exit 2
fi
address=${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS must be set (host:port of the Temporal frontend)}
namespace=${TEMPORAL_NAMESPACE:?TEMPORAL_NAMESPACE must be set (the namespace of the application)}
retention=${TEMPORAL_NAMESPACE_RETENTION:-168h}
for spec in "$@"; do
  if [[ ! $spec =~ ^[A-Za-z_][A-Za-z0-9_]*=(Text|Keyword|Int|Double|Bool|Datetime|KeywordList)$ ]]; then
    echo "invalid search attribute '$spec': expected Name=Type (Text, Keyword, Int, Double, Bool, Datetime or KeywordList)" >&2
    exit 2
  fi
done

# The frontend may report SERVING before it takes namespace requests: try for a while (3 minutes).
attempts=90
for ((i = 1; ; i++)); do
  if temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
    break
  fi
  if temporal operator namespace create --address "$address" --namespace "$namespace" --retention "$retention" \
    >/dev/null 2>&1; then
    echo "namespace '$namespace' created (retention $retention)"
    break
  fi
  if ((i >= attempts)); then
    echo "namespace '$namespace' could not be found or created on $address after $attempts attempts" >&2
    exit 1
  fi
  echo "waiting for the frontend on $address to create namespace '$namespace' ($i/$attempts)"
  sleep 2
done

# Output captured first: with pipefail, `list | grep -q` could fail on SIGPIPE when grep exits early.
registered() {
  local listing
  listing=$(temporal operator search-attribute list --address "$address" --namespace "$namespace" 2>/dev/null) ||
    return 1
  grep -Eq "(^|[[:space:]])$1([[:space:]]|$)" <<<"$listing"
}

for spec in "$@"; do
  name=${spec%%=*}
  type=${spec#*=}
  if registered "$name"; then
    echo "search attribute $name already registered in '$namespace'"
    continue
  fi
  # A namespace created a moment ago may not have reached every frontend's cache yet: retry for a while.
  for ((i = 1; ; i++)); do
    # "already exists" (a concurrent run) fails the create but is what the check above then finds.
    temporal operator search-attribute create --address "$address" --namespace "$namespace" \
      --name "$name" --type "$type" >/dev/null 2>&1 || true
    if registered "$name"; then
      echo "search attribute $name ($type) registered in '$namespace'"
      break
    fi
    if ((i >= 30)); then
      echo "could not register search attribute $name ($type) in '$namespace'" >&2
      temporal operator search-attribute create --address "$address" --namespace "$namespace" \
        --name "$name" --type "$type" >&2 || true
      exit 1
    fi
    sleep 2
  done
done
