#!/usr/bin/env bash
# First start of the platform's PostgreSQL (docker-compose.yml and the Kubernetes dev overlay):
# one role per service, with its own password, owning the service's database (database-per-
# service means credentials too). Run once, on an empty data directory, by the image's
# entrypoint from /docker-entrypoint-initdb.d, as the superuser over the local socket.
set -euo pipefail

create() {
  local role=$1 database=$2 password=$3
  [[ -n $password ]] || { echo "postgres-init: the password of $role is empty" >&2; exit 1; }
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$role" -v database="$database" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
}

create user_service users "${USER_DB_PASSWORD:-}"
create order_service orders "${ORDER_DB_PASSWORD:-}"
create payment_service payments "${PAYMENT_DB_PASSWORD:-}"
create notification_service notifications "${NOTIFICATION_DB_PASSWORD:-}"
