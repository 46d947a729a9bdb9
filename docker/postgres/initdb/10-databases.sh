#!/usr/bin/env bash
# Runs once, when the postgres container starts on an empty data volume (/docker-entrypoint-initdb.d).
# Creates one role and database for the application, and one role owning the two databases Temporal needs
# (auto-setup runs with SKIP_DB_CREATE=true and only installs its schemas). Passwords come from the
# container environment (see docker-compose.yml); changing them later needs ALTER ROLE, not a restart.
# No `set -u`: the official entrypoint may source this file.
set -eo pipefail

: "${STELLAOPS_DB_PASSWORD:?STELLAOPS_DB_PASSWORD is required}"
: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is required}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v app_password="$STELLAOPS_DB_PASSWORD" \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
-- Application: migrations (scripts/migrate.ts) create the schemas, so the role owns its database.
CREATE ROLE stellaops LOGIN PASSWORD :'app_password';
CREATE DATABASE stellaops OWNER stellaops;

-- Temporal: persistence and visibility stores (visibility creates the trusted btree_gin extension itself).
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
