"""Liveness (the process answers) and readiness (the bucket is reachable and is a hubmirror bucket)."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mirror_core.errors import FormatError, StorageError


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    store = request.app.state.ctx.store
    try:
        with anyio.fail_after(10):
            await anyio.to_thread.run_sync(store.check_format)
    except FormatError as exc:
        return _not_ready("BucketFormat", str(exc))
    except (StorageError, TimeoutError) as exc:
        return _not_ready("StorageUnavailable", str(exc) or "object store did not answer within 10 s")
    return JSONResponse({"status": "ready", "bucket": store.bucket})


def _not_ready(code: str, message: str) -> Response:
    return JSONResponse({"status": "unavailable", "error": message}, status_code=503,
                        headers={"Retry-After": "5", "X-Error-Code": code})
