"""What every hubmirror DAG shares: start date, retry manners towards the upstream, assets, settings.

Kept tiny and cheap to import (the dag-processor parses DAG files often): mirror_core itself is
imported inside the task bodies. Timing knobs come from the environment (`mirror_core.settings.AirflowKnobs`
names them) so a test (or an impatient operator) can shorten them without editing DAG files.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, ExceptionRetryPolicy, RetryAction, RetryRule

from mirror_core.settings import UPSTREAM_POOL, airflow_knobs

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
TRENDING_ASSET = Asset("hubmirror://state/trending/latest.json", group="hubmirror")
CATALOG_ASSET = Asset("hubmirror://state/catalog/latest.json", group="hubmirror")

KNOBS = airflow_knobs()
RETRY_DELAY = timedelta(seconds=KNOBS.retry_delay_seconds)
MAX_RETRY_DELAY = timedelta(seconds=KNOBS.max_retry_delay_seconds)
UPSTREAM_RETRIES = KNOBS.upstream_retries
SYNC_CRON = KNOBS.sync_cron

# Retrying cannot fix a refused token, a gated repo or bad input: fail on the first try so the
# operator sees the real cause at once. Everything else (5xx, network, 429, storage hiccups)
# follows the task's exponential backoff.
UPSTREAM_RETRY_POLICY = ExceptionRetryPolicy(rules=[
    RetryRule(exception=["mirror_core.errors.UpstreamAuthError"], action=RetryAction.FAIL,
              reason="the upstream refused the service token (401/403/gated): fix the token, do not retry"),
    RetryRule(exception=["mirror_core.errors.ConfigError", "mirror_core.errors.InvalidInputError"],
              action=RetryAction.FAIL, reason="invalid settings or input: retrying cannot help"),
])

UPSTREAM_TASK_ARGS: dict[str, Any] = {
    "pool": UPSTREAM_POOL,
    "retries": UPSTREAM_RETRIES,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": MAX_RETRY_DELAY,
    "retry_policy": UPSTREAM_RETRY_POLICY,
}

DEFAULT_ARGS: dict[str, Any] = {"owner": "hubmirror", "retries": 1, "retry_delay": RETRY_DELAY}

# What every hubmirror DAG shares; each DAG file adds its id, schedule, docs and params.
DAG_ARGS: dict[str, Any] = {"start_date": START_DATE, "catchup": False, "default_args": DEFAULT_ARGS,
                            "tags": ["hubmirror"]}


def settings_and_store():
    """mirror_core Settings (from Airflow connections, see plugins/hooks.py) and the bucket Store."""
    from mirror_core.store import Store
    from plugins.hooks import mirror_settings

    settings = mirror_settings()
    return settings, Store(settings.s3)


def plan_batches() -> list[list[dict]]:
    """Task body of hubmirror_sync's `plan`: the selection (configured + latest trending snapshot), in batches
    of one repo unless there are more repos than Airflow maps ([core] max_map_length)."""
    from airflow.sdk import conf

    from mirror_core.selection import plan as plan_selection

    settings, store = settings_and_store()
    plans = [p.to_dict() for p in plan_selection(settings, store)]
    batches = batch_plans(plans, conf.getint("core", "max_map_length"))
    print(f"{len(plans)} repos selected in {len(batches)} mapped tasks: {', '.join(p['repo_id'] for p in plans)}")
    return batches


def refresh_trending(outlet_events: Any) -> dict:
    """Task body of hubmirror_trending: store a new snapshot and tell the trending Asset how many repos it has."""
    from mirror_core.trending import refresh_trending as refresh

    settings, store = settings_and_store()
    snapshot = refresh(settings, store)
    repos = [f"{p.repo_type}/{p.repo_id}" for p in snapshot.repos]
    outlet_events[TRENDING_ASSET].extra = {"repos": len(repos)}
    print(f"trending snapshot: {len(repos)} repos selected: {', '.join(repos)}")
    return {"repos": repos}


def verify_bucket(params: dict, context: Any) -> dict:
    """Task body of hubmirror_verify: re-hash, repair unless a dry run; fail after the report if problems remain."""
    from airflow.sdk.exceptions import AirflowFailException

    from mirror_core.verify import verify

    settings, store = settings_and_store()
    report = verify(settings, store, sample=params["sample"] or None, repair=not params["dry_run"],
                    run_id=run_id_of(context), bodies=params["sha256"] or None)
    summary = report.to_dict()
    print(f"verify report: {report.report_key}: {summary.get('missing')} missing, "
          f"{summary.get('corrupt')} corrupt, {report.repaired} repaired")
    if not report.ok:
        raise AirflowFailException(f"verify found problems it did not repair; see {report.report_key}")
    return {"report_key": report.report_key, "ok": report.ok, "repaired": report.repaired}


def retain_and_collect(params: dict, context: Any) -> dict:
    """Task body of hubmirror_gc: retention then mark-and-sweep, one report for the cycle (none for a dry run)."""
    from airflow.sdk.exceptions import AirflowFailException

    from mirror_core.gc import retain_and_collect as cycle

    settings, store = settings_and_store()
    report = cycle(settings, store, dry_run=params["dry_run"], grace_seconds=params["grace_hours"] * 3600,
                   run_id=run_id_of(context))
    print(f"gc: {report.deleted} bodies, {report.bytes_reclaimed} bytes "
          f"{'would be reclaimed' if params['dry_run'] else 'reclaimed'}; report {report.report_key}")
    if not report.ok:
        raise AirflowFailException(f"retention/gc found problems (nothing unsafe was deleted): {report.problems}"
                                   f"; see {report.report_key or 'the XCom of this task'}")
    return report.to_dict()


def request_plan(repo_id: str, repo_type: str, revision: str) -> dict:
    """The plan of one requested repo; a configured entry for it lends its allow/ignore patterns."""
    from mirror_core.layout import RepoRef
    from mirror_core.selection import RepoPlan
    from plugins.hooks import mirror_settings

    repo = RepoRef.parse(repo_id, repo_type)
    configured = next((r for r in mirror_settings().selection.repos if r.repo == repo), None)
    return RepoPlan(repo_id=repo_id, repo_type=repo.type, revisions=[revision],
                    allow_patterns=configured.allow_patterns if configured else None,
                    ignore_patterns=configured.ignore_patterns if configured else None,
                    source="request").to_dict()


def run_id_of(context: Any) -> str:
    """A report id that names the DAG run it came from (mirror_core.reports makes it S3-key safe)."""
    dag_run = context["dag_run"]
    return f"{dag_run.dag_id}--{dag_run.run_id}"


def sync_one(repo_plan: dict, *, force: bool, context: Any) -> dict:
    """Task body of `sync_repo`: mirror one planned repo, fail the task if mirror_core reports failure.

    UpstreamAuthError propagates from mirror_core unchanged, so UPSTREAM_RETRY_POLICY fails it at once.
    The error text is also pushed as XCom `error` so the run report can name it.
    """
    from mirror_core.errors import RepoSyncFailed
    from mirror_core.selection import RepoPlan
    from mirror_core.sync import sync_repo
    from plugins.hooks import mirror_settings

    plan = RepoPlan.from_dict(repo_plan)
    try:
        result = sync_repo(mirror_settings(), plan.repo, plan.revisions, allow_patterns=plan.allow_patterns,
                           ignore_patterns=plan.ignore_patterns, force=force, run_id=run_id_of(context))
    except Exception as exc:  # UpstreamAuthError, invalid input: recorded for the report, then raised
        context["ti"].xcom_push(key="error", value=f"{type(exc).__name__}: {exc}")
        raise
    if not result.ok:
        context["ti"].xcom_push(key="error", value=str(result.error))
        if not result.retryable:  # gone, gated or hidden from our token: a retry would only fail again
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{plan.repo_type}/{plan.repo_id}: {result.error}")
        raise RepoSyncFailed(f"{plan.repo_type}/{plan.repo_id}: {result.error}")
    return result.to_dict()


def batch_plans(plans: list[dict], max_map_length: int) -> list[list[dict]]:
    """Split plans into at most `max_map_length` batches of equal size (one repo each when they fit),
    because Airflow fails a mapped task with more items than [core] max_map_length."""
    if max_map_length < 1:
        raise ValueError(f"[core] max_map_length must be at least 1, not {max_map_length}")
    size = -(-len(plans) // max_map_length) or 1
    return [plans[i:i + size] for i in range(0, len(plans), size)]


def _label(plan: dict) -> str:
    return f"{plan['repo_type']}/{plan['repo_id']}"


def sync_batch(batch: list[dict], *, force: bool, context: Any) -> list[dict]:
    """Task body of a mapped `sync_repo`: mirror each repo of the batch in turn.

    A batch of one behaves exactly like `sync_one`. In a larger batch a failed repo does not stop the
    others: the results so far go to XCom `partial`, each failed repo's error to XCom `errors`, and the
    task then fails (retryable unless every failure was final, like a refused token), so the report
    names each failed repo and a retry re-runs the batch (repos already current are skipped cheaply).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from mirror_core.errors import RepoSyncFailed

    more = f" +{len(batch) - 1} more" if len(batch) > 1 else ""
    context["repo_label"] = f"{batch[0]['repo_type'].rstrip('s')}/{batch[0]['repo_id']}{more}"  # map_index_template
    if len(batch) == 1:
        return [sync_one(batch[0], force=force, context=context)]
    results, errors, retryable = [], {}, False
    for plan in batch:
        try:
            results.append(sync_one(plan, force=force, context=context))
        except Exception as exc:
            errors[_label(plan)] = f"{type(exc).__name__}: {exc}"
            retryable |= isinstance(exc, RepoSyncFailed)
            print(f"{_label(plan)} failed: {exc}")
    if not errors:
        return results
    context["ti"].xcom_push(key="partial", value=results)
    context["ti"].xcom_push(key="errors", value=errors)
    message = f"{len(errors)} of {len(batch)} repos failed: {', '.join(errors)}"
    raise RepoSyncFailed(message) if retryable else AirflowFailException(message)


def report_and_catalog(plans: list, context: Any, *, mapped: bool) -> dict:
    """Collect each repo's outcome from XCom, write the run report, rebuild the catalog, then fail
    (and with it the run, so the grid shows it) if any repo failed.

    `plans` is the list of repo plans of the one `sync_repo` task, or (mapped) the batches of plans,
    one per mapped `sync_repo`. Runs with trigger_rule all_done: a repo without a result failed (its
    error XCom says why).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from mirror_core.catalog import build_catalog
    from mirror_core.reports import RunReport

    settings, store = settings_and_store()
    ti = context["ti"]
    batches = plans if mapped else [plans]
    plans = [plan for batch in batches for plan in batch]
    results, failed = [], []
    for index, batch in enumerate(batches):
        where = {"map_indexes": index} if mapped else {}
        returned = ti.xcom_pull(task_ids="sync_repo", **where)
        if returned:
            results.extend(returned if isinstance(returned, list) else [returned])
            continue
        done = ti.xcom_pull(task_ids="sync_repo", key="partial", **where) or []
        results.extend(done)
        returned_ids = {(r["repo_type"], r["repo_id"]) for r in done}
        errors = ti.xcom_pull(task_ids="sync_repo", key="errors", **where) or {}
        error = ti.xcom_pull(task_ids="sync_repo", key="error", **where)
        for plan in batch:
            if (plan["repo_type"], plan["repo_id"]) in returned_ids:
                continue
            failed.append({"repo_id": plan["repo_id"], "repo_type": plan["repo_type"],
                           "map_index": index if mapped else None,
                           "error": errors.get(_label(plan)) or (error if len(batch) == 1 else None)
                           or "the sync_repo task did not succeed; see its log in Airflow"})
    dag_run = context["dag_run"]
    report = RunReport.sync(run_id_of(context), results, planned=len(plans), failed=failed,
                            started_at=getattr(dag_run, "start_date", None), dag_id=dag_run.dag_id,
                            dag_run_id=dag_run.run_id)
    report_key = report.write(store)
    catalog_key = build_catalog(settings, store)
    synced, failed = report.details["synced"], report.details["failed"]
    print(f"run report: {report_key}; catalog: {catalog_key}; {synced}/{len(plans)} repos synced")
    if failed:  # end the run failed, so the grid shows it
        names = ", ".join(f"{f['repo_type']}/{f['repo_id']}" for f in failed)
        raise AirflowFailException(
            f"{len(failed)} of {len(plans)} repos failed: {names}. "
            "The run report and catalog were written. Fix the cause, then clear the failed tasks "
            "(sync_repo and report) to retry just those repos."
        )
    return {"report_key": report_key, "catalog_key": catalog_key, "planned": len(plans), "synced": synced,
            "failed": failed}
