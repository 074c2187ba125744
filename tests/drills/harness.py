"""Real servers for the drills: a throwaway PostgreSQL cluster started with initdb/pg_ctl, and
MAIS application processes under gunicorn. Everything listens on 127.0.0.1 only and is stopped by
the fixture that started it."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import ROOT, TEST_SECRET_KEY, TEST_SECRETS_KEY, TEST_WEBHOOK_SECRET

VENV_BIN = Path(sys.executable).parent


def listening_socket() -> socket.socket:
    """A socket already bound to a free port and listening: the server it is handed to never
    looks for a port, so no other test can take that port between the look and the bind."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(f"The drills need PostgreSQL's {name} (Debian: postgresql package)")
    return found


def _as_postgres_user() -> list[str]:
    # initdb refuses to run as root; the drills run as root on CI machines.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster of its own, so a drill may stop and restart it. It listens on a
    Unix socket in its own directory only, so no port is shared with anything else."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mais-pg-")))

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@/{name}?host={self.directory}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_as_postgres_user(), *args], check=check, capture_output=True, text=True
        )

    def init(self) -> ThrowawayPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            _postgres_bin("initdb"),
            "-D",
            str(self.directory / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        return self.start()

    def start(self) -> ThrowawayPostgres:
        options = f"-k {self.directory} -c listen_addresses='' -c max_connections=200"
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-o",
            options,
            "-l",
            str(self.directory / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )
        return self

    def create_database(self, prefix: str = "mais") -> str:
        """A new empty database on this cluster; returns its URL."""
        import uuid

        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self, mode: str = "fast") -> None:
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-m",
            mode,
            "-w",
            "-t",
            "30",
            "stop",
            check=False,
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def app_environment(
    database_url: str, base_url: str, mail_dir: Path, **extra: str
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MAIS_", "STRIPE_", "DATABASE_", "REDIS_"))
    }
    env.update(
        {
            "FLASK_APP": "app",
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_SECRET_KEY,
            "MAIS_SECRETS_KEY": TEST_SECRETS_KEY,
            "MAIS_PAYMENTS": "mock",
            "STRIPE_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
            "MAIS_BASE_URL": base_url,
            "MAIS_MAIL_DIR": str(mail_dir),
            "MAIS_SEND_MAIL_INLINE": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def migrate(database_url: str, mail_dir: Path) -> None:
    subprocess.run(
        [str(VENV_BIN / "flask"), "db", "upgrade"],
        cwd=ROOT,
        env=app_environment(database_url, "http://127.0.0.1", mail_dir),
        check=True,
        capture_output=True,
    )


@dataclass
class AppProcess:
    """One MAIS application server (gunicorn, threaded workers) on its own port."""

    database_url: str
    mail_dir: Path
    listener: socket.socket = field(default_factory=listening_socket)
    workers: int = 2
    threads: int = 8
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> AppProcess:
        self.log = open(self.mail_dir.parent / f"gunicorn-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "--bind",
                f"fd://{self.listener.fileno()}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--timeout",
                "60",
                "app:create_app()",
            ],
            cwd=ROOT,
            env=app_environment(self.database_url, self.base_url, self.mail_dir, **self.extra_env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(self.listener.fileno(),),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"gunicorn exited: see {self.log.name}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer in {timeout}s: see {self.log.name}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.listener.close()
        if getattr(self, "log", None):
            self.log.close()


def queue_drill_mail(app: Any, prefix: str, count: int, to: str = "couple") -> None:
    """Mark whatever mail earlier drills left pending as sent, then queue ``count`` messages
    whose dedup keys start with ``prefix``, so a drill counts its own messages only."""
    from sqlalchemy import select

    from mais.extensions import db
    from mais.models import OutboxMessage, OutboxStatus
    from mais.tenancy import platform_scope

    with app.app_context():
        with platform_scope("drill: clearing older pending mail"):
            for message in db.session.scalars(
                select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
            ):
                message.status = OutboxStatus.SENT
            for n in range(count):
                db.session.add(
                    OutboxMessage(
                        dedup_key=f"{prefix}:{n}",
                        tenant_id=None,
                        template="drill",
                        to_email=f"{to}{n}@example.com",
                        subject=f"Drill message {n}",
                        body_text="Hello from the drill.\n",
                    )
                )
        db.session.commit()
