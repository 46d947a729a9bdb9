#!/usr/bin/env bash
# Registers custom search attributes in a Temporal namespace; safe to run any number of times.
# Usage: register-search-attributes.sh <namespace> <Name>=<Type>...   (e.g. default TenantId=Keyword)
# Needs the `temporal` CLI (temporalio/admin-tools image) and TEMPORAL_ADDRESS.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 <namespace> <Name>=<Type>..." >&2
  exit 2
fi
namespace=$1
shift
address=${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS must be set (host:port of the Temporal frontend)}

# auto-setup reports SERVING before it has created the default namespace: wait for the namespace itself.
attempts=90
for ((i = 1; ; i++)); do
  if temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
    break
  fi
  if ((i >= attempts)); then
    echo "namespace '$namespace' not found on $address after $attempts attempts" >&2
    exit 1
  fi
  echo "waiting for namespace '$namespace' on $address ($i/$attempts)"
  sleep 2
done

# Output captured first: with pipefail, `list | grep -q` could fail on SIGPIPE when grep exits early.
registered() {
  local listing
  listing=$(temporal operator search-attribute list --address "$address" --namespace "$namespace") || return 1
  grep -Eq "(^|[[:space:]])$1([[:space:]]|$)" <<<"$listing"
}

for spec in "$@"; do
  name=${spec%%=*}
  type=${spec#*=}
  if [[ -z $name || -z $type || $name == "$spec" ]]; then
    echo "invalid search attribute '$spec': expected Name=Type" >&2
    exit 2
  fi
  if registered "$name"; then
    echo "search attribute $name already registered in '$namespace'"
    continue
  fi
  if temporal operator search-attribute create --address "$address" --namespace "$namespace" \
    --name "$name" --type "$type"; then
    echo "search attribute $name ($type) registered in '$namespace'"
  elif registered "$name"; then
    # Created concurrently (or the server reported "already exists"): the goal is reached.
    echo "search attribute $name already registered in '$namespace'"
  else
    echo "could not register search attribute $name ($type) in '$namespace'" >&2
    exit 1
  fi
done
