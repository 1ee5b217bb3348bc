#!/usr/bin/env bash
# Runs once, on the first start of an empty data volume (postgres image: /docker-entrypoint-initdb.d).
# genomebus services never share tables: each of ingest, consent and registry gets its own database
# owned by its own login role, and PUBLIC may not connect, so no service can reach another's data.
# Passwords come from the environment (see docker-compose.yml); none is written here.
set -euo pipefail

create_service_db() {
    local service="$1" password="$2"
    local db="genomebus_${service}" role="genomebus_${service}"
    if [[ -z "$password" ]]; then
        echo "init: no password given for role ${role}" >&2
        exit 1
    fi
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -v role="$role" -v db="$db" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
SQL
    # PostgreSQL 15 already denies CREATE on schema public to PUBLIC; make the owner explicit.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$db" -v role="$role" <<'SQL'
ALTER SCHEMA public OWNER TO :"role";
SQL
    echo "init: created database ${db} for role ${role}"
}

create_service_db ingest   "${GENOMEBUS_INGEST_DB_PASSWORD:-}"
create_service_db consent  "${GENOMEBUS_CONSENT_DB_PASSWORD:-}"
create_service_db registry "${GENOMEBUS_REGISTRY_DB_PASSWORD:-}"
