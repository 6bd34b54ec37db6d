"""The hubmirror Airflow plugin: the "Mirror" page and the listener that creates the upstream pool.

Registered through the `airflow.plugins` entry point in pyproject.toml, so an installed hubmirror
is enough (no file in $AIRFLOW_HOME/plugins). Hooks are plain modules (`plugins.hooks`): Airflow 3
plugins no longer register hooks or operators.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from plugins import listeners
from plugins.mirror_view import app


class HubmirrorPlugin(AirflowPlugin):
    name = "hubmirror"
    fastapi_apps = [{"app": app, "url_prefix": "/hubmirror", "name": "hubmirror"}]
    external_views = [{"name": "Mirror", "href": "/hubmirror/ui", "url_route": "hubmirror",
                       "destination": "nav", "category": "browse"}]
    listeners = [listeners]
