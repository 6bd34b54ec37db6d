"""Liveness (the process answers) and readiness (the bucket is reachable and is a hubmirror bucket).

Readiness runs the blocking S3 call in a thread it may abandon: an S3 that accepts connections and never
answers makes /readyz say 503 after `READY_TIMEOUT` instead of hanging the probe (the abandoned thread ends
with the store's own short timeouts). Failure details name endpoints and buckets: they are logged, never sent.
"""

from __future__ import annotations

import logging

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mirror_core.errors import FormatError, StorageError

log = logging.getLogger("hubmirror.serve.health")
READY_TIMEOUT = 3.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    store = request.app.state.ctx.store
    try:
        with anyio.fail_after(READY_TIMEOUT):
            await anyio.to_thread.run_sync(store.check_format, abandon_on_cancel=True)
    except FormatError as exc:
        log.error("not ready: %s", exc)
        return _not_ready("BucketFormat", "the bucket is not a hubmirror bucket of this version; see the log")
    except (StorageError, TimeoutError) as exc:
        log.warning("not ready: %s", exc or f"object store did not answer within {READY_TIMEOUT:g} s")
        return _not_ready("StorageUnavailable", "the object store is unavailable; see the log")
    return JSONResponse({"status": "ready"})


def _not_ready(code: str, message: str) -> Response:
    return JSONResponse({"status": "unavailable", "error": message}, status_code=503,
                        headers={"Retry-After": "5", "X-Error-Code": code})
