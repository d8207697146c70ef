"""A PostgreSQL server of a test's own, for fault tests that stop and restart
the database under a running node.

The shared server on 127.0.0.1:5432 must never be stopped, so such tests get
a throwaway cluster instead: its own folder under the system temp directory,
its own loopback port, no durability (it holds nothing worth keeping), and
removed at the end. PostgreSQL refuses to run as root, so when the tests run
as root every server command runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import pytest

# Bounds on every server command: initdb on a slow shared VM takes seconds,
# pg_ctl waits at most PG_CTL_WAIT for the server itself.
INITDB_TIMEOUT = 120
PG_CTL_WAIT = 30
COMMAND_TIMEOUT = PG_CTL_WAIT + 15
OS_USER = "postgres"
REQUIRED = ("initdb", "pg_ctl", "postgres", "createdb")


def find_binaries() -> Path:
    """The folder holding initdb, pg_ctl, postgres and createdb, or a skip."""
    candidates = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        # Debian links only some binaries onto PATH; the rest sit beside the
        # real pg_ctl.
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if all((folder / name).is_file() for name in REQUIRED):
            return folder
    pytest.skip(f"PostgreSQL server binaries ({', '.join(REQUIRED)}) not found")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """One throwaway PostgreSQL cluster: ``create()``, ``start()``, ``stop()``
    as often as a test needs, ``destroy()`` at the end. As a context manager
    it is started on entry and destroyed on exit."""

    def __init__(self, folder: Path, port: int, binaries: Path) -> None:
        self.folder = folder
        self.port = port
        self.binaries = binaries
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.running = False

    @classmethod
    def create(cls, base_dir: Path | str | None = None) -> PrivatePostgres:
        """Initialise a new cluster in a new folder under ``base_dir`` (the
        system temp directory by default), which the ``postgres`` user must
        be able to traverse: pytest's ``tmp_path`` is not, it is 0700 root."""
        binaries = find_binaries()
        as_root = os.geteuid() == 0
        if as_root and not shutil.which("runuser"):
            pytest.skip("running as root, and runuser is missing to drop to postgres")
        if as_root and not _user_exists(OS_USER):
            pytest.skip(f"running as root, and there is no {OS_USER!r} OS user")
        folder = Path(tempfile.mkdtemp(prefix="tessera-pg-", dir=base_dir))
        server = cls(folder, free_port(), binaries)
        try:
            if as_root:
                shutil.chown(folder, OS_USER, OS_USER)
            server._initdb()
            server._configure()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return server

    def _initdb(self) -> None:
        command = [str(self.binaries / "initdb"), "-D", str(self.data)]
        command += ["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]
        if "--no-instructions" in self._run([command[0], "--help"], 10).stdout:
            command.append("--no-instructions")
        self._run(command, INITDB_TIMEOUT)

    def _configure(self) -> None:
        # Loopback only, its own socket folder so that nothing lands in
        # /var/run/postgresql next to the shared server's socket, and no
        # fsync: restarts are quick and only an OS crash, which no test
        # makes, could lose data. Commits still reach the WAL before they
        # return, so what was committed survives an immediate stop.
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.folder}'",
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "100",
            "logging_collector": "off",
        }
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/private_postgres.py\n" + lines)

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(database)}"

    def start(self) -> None:
        command = [str(self.binaries / "pg_ctl"), "start", "-w", "-t"]
        command += [str(PG_CTL_WAIT), "-D", str(self.data), "-l", str(self.log)]
        try:
            self._run(command, COMMAND_TIMEOUT)
        except RuntimeError as error:
            raise RuntimeError(
                f"{error}\n--- server log ---\n{self._log_tail()}"
            ) from None
        self.running = True

    def stop(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Stop the server: ``fast`` closes connections cleanly, ``immediate``
        is a crash as far as clients (and the next start's recovery) see."""
        command = [str(self.binaries / "pg_ctl"), "stop", "-w", "-t"]
        command += [str(PG_CTL_WAIT), "-m", mode, "-D", str(self.data)]
        try:
            self._run(command, COMMAND_TIMEOUT)
        except RuntimeError:
            # A stop that did not finish must not leave a server behind.
            self._kill()
            raise
        finally:
            self.running = False

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        command = [str(self.binaries / "createdb"), "-h", "127.0.0.1"]
        command += ["-p", str(self.port), "-U", "postgres", name]
        self._run(command, COMMAND_TIMEOUT)
        return self.url_for(name)

    def destroy(self) -> None:
        """Stop the server if it runs and remove its folder; safe to repeat."""
        if self.running or (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        try:
            if not self.running:
                self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.destroy()

    def _run(
        self, command: list[str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            command = ["runuser", "-u", OS_USER, "--", *command]
        try:
            # Run from the cluster's folder: root's working directory may be
            # closed to the postgres user, and initdb and pg_ctl complain.
            completed = subprocess.run(
                command,
                cwd=self.folder,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{command} took more than {timeout} s") from None
        if completed.returncode != 0:
            raise RuntimeError(
                f"{command} exited with {completed.returncode}:\n"
                f"{completed.stdout}{completed.stderr}"
            )
        return completed

    def _kill(self) -> None:
        """SIGKILL the postmaster named in its pid file; its backends notice
        the postmaster's death and exit on their own."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return "(no log)"
