"""The Mirror plugin's OpenAPI docs sit behind Airflow's login like its pages (FastAPI serves them openly)."""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import get_user
from fastapi.testclient import TestClient

from plugins.mirror_view import app


class _User:
    def get_name(self) -> str:
        return "reader"


def test_openapi_docs_need_a_login() -> None:
    client = TestClient(app)
    for path in ("/docs", "/openapi.json"):
        assert client.get(path).status_code == 401, path
    assert client.get("/redoc").status_code == 404  # not offered at all
    app.dependency_overrides[get_user] = _User
    try:
        assert "/api/repos" in client.get("/openapi.json").json()["paths"]
        page = client.get("/docs", headers={"root-path": ""})
        assert page.status_code == 200 and "openapi.json" in page.text
    finally:
        app.dependency_overrides.clear()
