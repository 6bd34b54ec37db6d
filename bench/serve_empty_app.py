"""Baseline for bench/serve_throughput.py: a do-nothing Starlette handler under the same uvicorn."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def nothing(request: Request) -> Response:
    return Response(b"", headers={"Content-Length": "0"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/{path:path}", nothing, methods=["GET", "HEAD"])])
