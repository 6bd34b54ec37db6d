"""Airflow listeners of the hubmirror plugin.

`on_starting` runs when an Airflow job starts (scheduler, dag-processor, triggerer). It creates the
`hf_upstream` pool if it is missing, because a task in a non-existent pool is never scheduled and
just hangs; an operator's later change of its slots is kept. It is the pool's only creator: the
scheduler's Job runs it before queueing any task, so `hubmirror up`, compose and Helm rely on it.
"""

from __future__ import annotations

import logging

from airflow.listeners import hookimpl

from mirror_core.settings import UPSTREAM_POOL, UPSTREAM_POOL_DESCRIPTION, airflow_knobs

log = logging.getLogger(__name__)


def ensure_pools() -> bool:
    """Create the hubmirror pool(s) if missing; True if one was created."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session
    from sqlalchemy.exc import IntegrityError

    slots = airflow_knobs().upstream_pool_slots
    try:
        with create_session() as session:
            if Pool.get_pool(UPSTREAM_POOL, session=session) is not None:
                return False
            session.add(Pool(pool=UPSTREAM_POOL, slots=slots, description=UPSTREAM_POOL_DESCRIPTION,
                             include_deferred=False))
        log.info("created pool %s with %d slots", UPSTREAM_POOL, slots)
        return True
    except IntegrityError:  # another component created it at the same moment
        return False


@hookimpl
def on_starting(component) -> None:
    if type(component).__name__ != "Job":
        return
    try:
        ensure_pools()
    except Exception:  # never stop a scheduler because of this; the missing pool is logged by Airflow
        log.exception("hubmirror: could not ensure pool %s", UPSTREAM_POOL)
