"""A stand-in for the Airflow REST API that records the DAG runs serve asks for."""

from __future__ import annotations

import http.server
import json
import time


class FakeAirflow(http.server.ThreadingHTTPServer):
    """POST /auth/token and POST /api/v2/dags/<id>/dagRuns, as AIRFLOW_NOTES.md §3 describes them."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict]] = []
        self.logins = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                if self.path == "/auth/token":
                    ok = body == {"username": "admin", "password": "pw"}
                    outer.logins += ok
                    self._answer(201 if ok else 401, {"access_token": "jwt"} if ok else {"detail": "bad"})
                elif self.path.startswith("/api/v2/dags/") and self.path.endswith("/dagRuns"):
                    if self.headers.get("authorization") != "Bearer jwt":
                        self._answer(401, {"detail": "no token"})
                        return
                    assert "logical_date" in body and body["logical_date"] is None
                    outer.runs.append((self.path.split("/")[4], body["conf"]))
                    self._answer(200, {"dag_run_id": f"manual__{len(outer.runs)}"})
                else:
                    self._answer(404, {})

            def _answer(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def airflow_env(airflow: FakeAirflow) -> dict[str, str]:
    return {"HUBMIRROR_SERVE_AIRFLOW_URL": airflow.url, "HUBMIRROR_SERVE_AIRFLOW_USERNAME": "admin",
            "HUBMIRROR_SERVE_AIRFLOW_PASSWORD": "pw"}


def wait_for(predicate, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
