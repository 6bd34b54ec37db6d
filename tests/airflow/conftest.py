"""Airflow test fixtures: the parsed DAG bag and a migrated SQLite metadata DB in the session's AIRFLOW_HOME.

tests/conftest.py already pointed AIRFLOW_HOME at a temp dir and DAGS_FOLDER at dags/. Retry delays
are shortened here, before any DAG file is imported, to keep retries in tests to about a second.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HUBMIRROR_RETRY_DELAY_SECONDS"] = "1"
os.environ["HUBMIRROR_MAX_RETRY_DELAY_SECONDS"] = "2"

import pytest  # noqa: E402

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def bag():
    """The DAG files parsed as the dag-processor does (the bundle dags/ on sys.path, so hubmirror_common imports)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """`airflow db migrate` on the session's fresh SQLite file (dag.test() needs the tables)."""
    from airflow.utils import db

    db.initdb()
