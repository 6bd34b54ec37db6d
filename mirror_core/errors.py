"""Every error mirror_core raises, in one place.

Each message says what was wrong and what to do about it, because these reach operators
through the CLI, Airflow task logs and serve's error bodies.
"""


class HubmirrorError(Exception):
    """Base class: anything hubmirror raises on purpose."""


class InvalidInputError(HubmirrorError, ValueError):
    """A caller-supplied name (repo id, path, revision, hash) is not acceptable."""


class InvalidRepoIdError(InvalidInputError):
    pass


class InvalidPathError(InvalidInputError):
    pass


class InvalidRevisionError(InvalidInputError):
    pass


class ConfigError(HubmirrorError):
    """Settings could not be loaded; the message names the field and what is allowed."""


class StorageError(HubmirrorError):
    """The object store answered with an error we did not expect."""


class StorageUnavailableError(StorageError):
    """The object store could not be reached at all (down, DNS, refused)."""


class CorruptObjectError(StorageError):
    """An object in the bucket (refs.json, a manifest, a run report) is malformed or vanished while being read:
    run `hubmirror verify`, and a sync of the repo rewrites it."""


class ConflictError(StorageError):
    """Another writer published to the same repo in the meantime (optimistic check on refs.json)."""


class FormatError(StorageError):
    """The bucket is not a hubmirror bucket of a layout version this code understands."""


class UpstreamError(HubmirrorError):
    """The upstream hub failed in a way retries did not fix."""


class UpstreamAuthError(UpstreamError):
    """The upstream refused our token (401/403): retrying will not help, fix the token."""


class UpstreamNotFoundError(UpstreamError):
    """The upstream has no such repo, revision or file (or hides it from our token)."""


class UpstreamRevisionNotFoundError(UpstreamNotFoundError):
    """The repo is there upstream, the asked revision is not (nothing to say about the repo's access)."""


class GatedRepoError(UpstreamAuthError):
    """The repo is gated and the service token has not been granted access."""


class RateLimitedError(UpstreamError):
    """The upstream kept answering 429 past our retry budget."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RepoSyncFailed(HubmirrorError):
    """A sync recorded a failure a retry may fix (upstream 5xx, network, storage): raised so Airflow retries."""


class StackError(HubmirrorError):
    """A component of the local stack failed to start; the message names it and its log file."""


class IntegrityError(HubmirrorError):
    """Downloaded or stored bytes do not match the hash the upstream published for them."""


class RedirectNotAllowedError(UpstreamError):
    """The upstream redirected to a host outside the allowed list."""
