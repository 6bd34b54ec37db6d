# syntax=docker/dockerfile:1.7
# One image for everything hubmirror runs in production: the Airflow components (with mirror_core, the
# DAGs and the plugin baked in, so they always match) and `hubmirror serve`.
#   docker build -t hubmirror:0.1.0 .
#   Airflow:  docker run hubmirror:0.1.0 api-server | scheduler | dag-processor | triggerer   (entrypoint: airflow)
#   serve:    docker run --entrypoint hubmirror hubmirror:0.1.0 serve --host 0.0.0.0 --port 8000
# Everything runs as the base image's non-root `airflow` user (uid 50000, gid 0); nothing here needs root.
# tests/deploy/test_dockerfile.py lints this file and replays its install steps as a non-root user.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.12

# Stage 1: the hubmirror wheel (sources never reach the final image, only the wheel does).
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS wheel
COPY --chown=airflow:root pyproject.toml README.md /tmp/hubmirror-src/
COPY --chown=airflow:root hubmirror/ /tmp/hubmirror-src/hubmirror/
COPY --chown=airflow:root mirror_core/ /tmp/hubmirror-src/mirror_core/
COPY --chown=airflow:root serve/ /tmp/hubmirror-src/serve/
COPY --chown=airflow:root plugins/ /tmp/hubmirror-src/plugins/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels /tmp/hubmirror-src

# Stage 2: the runtime image.
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when the dependencies change.
# Airflow is re-pinned so that installing hubmirror can never up- or downgrade it (Airflow's docker docs).
# The `local` extra (SeaweedFS for `hubmirror up`) is not installed: production uses MinIO or any S3.
RUN --mount=type=bind,source=pyproject.toml,target=/tmp/hubmirror-deps/pyproject.toml \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/hubmirror-deps/pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/hubmirror-requirements.txt \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/hubmirror-requirements.txt \
    && rm -f /tmp/hubmirror-requirements.txt
RUN --mount=type=bind,from=wheel,source=/tmp/wheels,target=/tmp/wheels \
    pip install --no-cache-dir --no-deps /tmp/wheels/hubmirror-*.whl
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root --chmod=0755 deploy/airflow-serve-user.sh /opt/hubmirror/bin/airflow-serve-user.sh

ENV AIRFLOW__CORE__LOAD_EXAMPLES=False \
    HF_HUB_DISABLE_TELEMETRY=1
USER 50000:0
