#!/bin/sh
# The Airflow identity of `hubmirror serve` (FabAuthManager): a role that may read and trigger (and pause)
# hubmirror_sync_repo and hubmirror_verify, no other DAG, and a user with only that role. Idempotent; run it after
# `airflow db migrate` with the image's DAGs (compose: airflow-init; helm: the serve-airflow-user Job).
#   HUBMIRROR_SERVE_AIRFLOW_USERNAME (default hubmirror-serve), HUBMIRROR_SERVE_AIRFLOW_PASSWORD (required)
set -eu
user="${HUBMIRROR_SERVE_AIRFLOW_USERNAME:-hubmirror-serve}"
password="${HUBMIRROR_SERVE_AIRFLOW_PASSWORD:?set HUBMIRROR_SERVE_AIRFLOW_PASSWORD (serve's Airflow password)}"
role=hubmirror-serve
dags="hubmirror_sync_repo hubmirror_verify"

# FAB lets a user trigger a DAG with `can_edit` on that DAG and `can_create` on "DAG Runs": granting the
# first for these two DAGs only keeps the second from reaching any other DAG. The per-DAG resources
# exist once the DAGs are serialized and their permissions synced.
airflow dags reserialize
airflow sync-perm --include-dags
airflow roles create "$role"
for dag in $dags; do
  airflow roles add-perms "$role" -r "DAG:$dag" -a can_read can_edit
done
airflow roles add-perms "$role" -r "DAG Runs" -a can_read can_create
airflow users create --username "$user" --password "$password" --role "$role" \
    --firstname hubmirror --lastname serve --email "$user@hubmirror.invalid" \
  || airflow users reset-password --username "$user" --password "$password"
echo "Airflow user $user may trigger: $dags"
