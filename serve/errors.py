"""HF-style error answers: every 4xx/5xx carries `X-Error-Code`, because the HF clients pick the
exception type from that header (HF_API_CONTRACT.md §7) and a bare 404 is read as "Hub unreachable"."""

from __future__ import annotations

import json

from starlette.responses import Response


def _header_safe(text: str) -> str:
    """Messages quote user input: keep them printable ASCII so they are a valid header value."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:500])


class HFError(Exception):
    """An answer the client should turn into a specific huggingface_hub exception."""

    status = 400
    code = "BadRequest"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None) -> None:
        """`class X(HFError, status=404, code="EntryNotFound")`: each answer's status and code on one line."""
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def response(self, head: bool = False) -> Response:
        body = b"" if head else json.dumps({"error": self.message}).encode()
        headers = {
            "X-Error-Code": self.code,
            "X-Error-Message": _header_safe(self.message),
            "Content-Type": "application/json",
            "Content-Length": str(len(body)) if not head else "0",
            **self.headers,
        }
        return Response(body, status_code=self.status, headers=headers)


class RepoNotFound(HFError, code="RepoNotFound"):
    def __init__(self, repo_id: str, *, authenticated: bool) -> None:
        # HF answers 401 to anonymous callers and 404 to authenticated ones, so existence never leaks.
        super().__init__("Repository not found", status=404 if authenticated else 401)
        self.repo_id = repo_id


class RevisionNotFound(HFError, status=404, code="RevisionNotFound"):
    def __init__(self, revision: str) -> None:
        super().__init__(f"Invalid rev id: {revision}")


class EntryNotFound(HFError, status=404, code="EntryNotFound"):
    def __init__(self, path: str, revision: str, commit: str | None) -> None:
        # X-Repo-Commit lets the client cache the absence (.no_exist/<sha>/<path>).
        super().__init__(f'{path} does not exist on "{revision}"',
                         headers={"X-Repo-Commit": commit} if commit else None)


class NotMirrored(EntryNotFound):
    """A file of the commit whose body the mirror's sync patterns left out: absent here, though it exists upstream."""

    def __init__(self, path: str, revision: str) -> None:
        super().__init__(path, revision, None)  # no X-Repo-Commit: a client must not cache this absence for good
        self.message = (f'{path} exists on "{revision}" upstream but is not mirrored: the mirror\'s allow/ignore '
                        "patterns leave it out; ask the mirror's operator to include it")


class GatedRepo(HFError, code="GatedRepo"):
    def __init__(self, repo_id: str, *, authenticated: bool) -> None:
        super().__init__(
            f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to access it."
            if not authenticated else
            f"Access to {repo_id} is restricted on this mirror and your token has not been granted it.",
            status=403 if authenticated else 401,
        )


class InvalidCredentials(HFError, status=401, code="Unauthorized"):
    def __init__(self) -> None:
        super().__init__("Invalid credentials in Authorization header")


class AuthRequired(HFError, status=401, code="Unauthorized"):
    def __init__(self) -> None:
        super().__init__("this mirror does not serve anonymous requests: send a mirror token (HF_TOKEN)")


class BadRequest(HFError, status=400, code="BadRequest"):
    """A malformed request: the message says which parameter and what is allowed."""


class RouteNotFound(HFError, status=404, code="NotFound"):
    """A path this mirror does not serve."""


class MethodNotAllowed(HFError, status=405, code="MethodNotAllowed"):
    """A method the route does not answer."""


class PayloadTooLarge(HFError, status=413, code="PayloadTooLarge"):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes; send fewer paths per request")


class RangeNotSatisfiable(HFError, status=416, code="RangeNotSatisfiable"):
    def __init__(self, size: int) -> None:
        super().__init__(f"Requested range not satisfiable (size {size})",
                         headers={"Content-Range": f"bytes */{size}"})


class ServiceUnavailable(HFError, status=503, code="StorageUnavailable"):
    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class InternalError(HFError, status=500, code="InternalError"):
    """A bug: logged with its traceback; the client sees only this code."""
