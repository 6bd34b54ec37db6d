"""`hubmirror`: the command line over mirror_core, the launcher of serve and of the local stack.

Each sub-command parses its arguments here and hands over to the module that does the work, so
the same code runs from Airflow tasks, Argo steps or a terminal.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from hubmirror.terminal import err, failure
from mirror_core.errors import HubmirrorError
from mirror_core.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    from hubmirror.sync_cli import run_sync

    return run_sync(args, settings)


def _cmd_trending(args: argparse.Namespace, settings: Settings) -> int:
    from hubmirror.sync_cli import run_trending

    return run_trending(args, settings)


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from hubmirror.sync_cli import run_status

    return run_status(args, settings)


def _cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from hubmirror.maintenance_cli import run_verify

    return run_verify(args, settings)


def _cmd_gc(args: argparse.Namespace, settings: Settings) -> int:
    from hubmirror.maintenance_cli import run_gc

    return run_gc(args, settings)


def _cmd_catalog(args: argparse.Namespace, settings: Settings) -> int:
    from mirror_core.catalog import build_catalog
    from mirror_core.store import Store

    print(build_catalog(settings, Store(settings.s3)))
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from serve.launch import run_serve

    return run_serve(host=args.host, port=args.port, workers=args.workers, log_level=args.log_level,
                     mode=args.mode, config=args.config)


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from hubmirror.stack import run_up

    return run_up(args, settings)


class _LogLines(logging.Handler):
    """What the library logs at WARNING or above, as one `warning: ...` line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        failure(record.getMessage(), label=record.levelname.lower(), color="yellow")


def show_library_warnings() -> None:
    """Route the `hubmirror.*` loggers' warnings (e.g. a revision pattern that matched nothing) to stderr."""
    logger = logging.getLogger("hubmirror")
    if not any(isinstance(h, _LogLines) for h in logger.handlers):
        logger.addHandler(_LogLines(logging.WARNING))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubmirror", description="Self-hosted Hugging Face Hub mirror.")
    parser.add_argument("--config", help="YAML settings file (default: $HUBMIRROR_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sync", help="mirror repos from the upstream into the bucket")
    p.add_argument("repo_ids", nargs="*", metavar="REPO_ID")
    p.add_argument("--type", default="model", choices=["model", "dataset", "space"])
    p.add_argument("--revision", action="append",
                   help="branch, tag, sha or glob such as 'v*' or 'refs/pr/*' (repeatable; default main)")
    p.add_argument("--all", action="store_true", help="the configured selection plus the latest trending snapshot")
    p.add_argument("--force", action="store_true", help="re-list and re-check even if the ref is current")
    p.set_defaults(handler=_cmd_sync)

    p = sub.add_parser("trending", help="refresh the trending snapshot and print the repos it selects")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_trending)

    p = sub.add_parser("status", help="what is mirrored: repos, revisions, sizes, last sync")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser("verify", help="re-hash stored bodies against their manifests")
    p.add_argument("--sample", type=int, default=None, metavar="N", help="check N bodies (rotating) instead of all")
    p.add_argument("--body", action="append", default=None, metavar="SHA256",
                   help="check only this body (repeatable), e.g. one serve flagged")
    p.add_argument("--repair", action="store_true", help="re-fetch missing or corrupt bodies from the upstream")
    p.set_defaults(handler=_cmd_verify)

    p = sub.add_parser("gc", help="apply retention, then delete bodies no retained manifest names")
    p.add_argument("--dry-run", action="store_true", help="print what would go and the bytes reclaimed")
    p.set_defaults(handler=_cmd_gc)

    p = sub.add_parser("catalog", help="rebuild the search catalog serve lists and searches (sync runs do it too)")
    p.set_defaults(handler=_cmd_catalog)

    p = sub.add_parser("serve", help="run the HF-compatible read service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--mode", choices=["proxy", "redirect"], default=None,
                   help="how bodies are delivered (default: $HUBMIRROR_SERVE_MODE or proxy)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_cmd_serve)

    p = sub.add_parser("up", help="run the whole stack locally on 127.0.0.1 (S3, Airflow, serve)")
    p.add_argument("--upstream", default=None, help="upstream hub URL (default https://huggingface.co)")
    p.add_argument("--demo", action="store_true", help="start the offline fake hub as the upstream")
    p.add_argument("--data-dir", default=".hubmirror", help="where local state lives")
    p.add_argument("--airflow-port", type=int, default=None, help="Airflow UI/API port (default 8080 if free)")
    p.add_argument("--serve-port", type=int, default=None, help="serve port (default 8000 if free)")
    p.add_argument("--s3-port", type=int, default=None, help="SeaweedFS S3 port (default 8333 if free)")
    p.set_defaults(handler=_cmd_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_library_warnings()
    try:
        settings = load_settings(args.config)
        return args.handler(args, settings)
    except HubmirrorError as exc:
        failure(str(exc))
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
