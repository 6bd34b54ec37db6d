# One image for everything hubmirror runs in production: the Airflow components (with mirror_core, the
# DAGs and the plugin baked in, so they always match) and `hubmirror serve`.
#   docker build -t hubmirror:0.1.0 .
#   Airflow:  docker run hubmirror:0.1.0 api-server | scheduler | dag-processor | triggerer   (entrypoint: airflow)
#   serve:    docker run --entrypoint hubmirror hubmirror:0.1.0 serve --host 0.0.0.0 --port 8000
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.12

ARG AIRFLOW_VERSION=3.3.2
COPY --chown=airflow:root pyproject.toml README.md /opt/hubmirror/
COPY --chown=airflow:root mirror_core/ /opt/hubmirror/mirror_core/
COPY --chown=airflow:root serve/ /opt/hubmirror/serve/
COPY --chown=airflow:root plugins/ /opt/hubmirror/plugins/
# Re-pin Airflow so that installing hubmirror can never up- or downgrade it (Airflow's docker docs).
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/hubmirror \
    && rm -rf /opt/hubmirror
COPY --chown=airflow:root dags/ /opt/airflow/dags/

ENV AIRFLOW__CORE__LOAD_EXAMPLES=False \
    HF_HUB_DISABLE_TELEMETRY=1
