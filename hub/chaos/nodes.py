"""Throw-away servers for `hub chaos --cluster`: three clustered RabbitMQ nodes and a PostgreSQL
primary with a synchronous streaming standby, all on this machine, beside (never instead of) the
machine's own RabbitMQ and PostgreSQL.

    with tempfile.TemporaryDirectory() as root:
        rabbit = RabbitCluster(Path(root) / "rabbit")
        rabbit.start()                     # hubchaos<tag>n1..n3@localhost, clustered
        pg = PostgresPair(Path(root) / "pg")
        pg.start()                         # primary + synchronous standby
        ...
        rabbit.nodes[0].kill()             # SIGKILL, the way a machine dies
        pg.fail_over()                     # SIGKILL the primary, `pg_ctl promote` the standby
        ...
        rabbit.stop(); pg.stop()           # through their own control commands

Why each setting (tried on Debian's RabbitMQ 3.10 and PostgreSQL 15):

- RabbitMQ is started as ``/usr/lib/rabbitmq/bin/rabbitmq-server`` (the real script), not the
  ``/usr/sbin`` wrapper, which switches to the ``rabbitmq`` user with the machine's HOME (and so
  the machine's Erlang cookie) and writes the machine's startup log. We switch user ourselves
  (`subprocess.Popen` ``user=``) with a HOME of our own holding the run's own cookie: the run's
  nodes cannot even talk to the machine's node, let alone join it.
- Each node has its own ``RABBITMQ_CONFIG_FILE``: the machine's ``/etc/rabbitmq/rabbitmq.conf``
  pins ``listeners.tcp.local = 127.0.0.1:5672``, which wins over ``RABBITMQ_NODE_PORT``. Its own
  ``RABBITMQ_CONF_ENV_FILE`` too: the machine's names the node ``rabbit@localhost``.
- Data, logs and the pid file live under the run's folder, owned by the user the server runs as.
- PostgreSQL: ``initdb`` + ``pg_basebackup -R`` as ``postgres``; the postmaster is started by us
  (so its pid is ours: SIGKILL means SIGKILL) and stopped with ``pg_ctl stop``.

Every process here is started by this module, and only those are ever signalled: by the pid of the
`subprocess.Popen` that started it (and, for a killed postmaster, the backends it forked).
"""
from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger(__name__)

#: Debian's real scripts (the /usr/sbin ones are wrappers that su to rabbitmq with its HOME).
RABBITMQ_SBIN = Path("/usr/lib/rabbitmq/bin")
#: Where Debian and the PGDG packages put the server binaries, one folder per major version.
POSTGRES_LIB = Path("/usr/lib/postgresql")

_SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NodeError(RuntimeError):
    """A throw-away server would not start, stop or answer (with what it printed)."""


# -- what the machine offers ----------------------------------------------------------------------


def rabbitmq_script(name: str) -> Path | None:
    """Path of a RabbitMQ script (``rabbitmq-server``, ``rabbitmqctl``), real one first."""
    candidate = RABBITMQ_SBIN / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def postgres_bindir() -> Path | None:
    """Folder of ``initdb``, ``pg_ctl``, ``pg_basebackup`` and ``postgres``: the newest Debian
    version folder, else wherever ``initdb`` is on the PATH."""
    versions = sorted((p for p in POSTGRES_LIB.glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def missing_tools() -> list[str]:
    """What this machine lacks to run the cluster chaos run (empty when it has everything)."""
    missing = []
    if rabbitmq_script("rabbitmq-server") is None or rabbitmq_script("rabbitmqctl") is None:
        missing.append("rabbitmq-server")
    bindir = postgres_bindir()
    if bindir is None or not all((bindir / tool).exists()
                                 for tool in ("initdb", "pg_ctl", "pg_basebackup", "postgres")):
        missing.append("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup)")
    if os.geteuid() == 0:
        for user in ("rabbitmq", "postgres"):
            if not _user_exists(user):
                missing.append(f"the {user} user")
    return missing


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def service_user(name: str) -> str | None:
    """The user a server runs as: ``name`` when we are root (RabbitMQ drops to ``rabbitmq``
    anyway and ``initdb`` refuses root), else ourselves (None: no switch)."""
    return name if os.geteuid() == 0 else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def owned_dir(path: Path, user: str | None, mode: int = 0o700) -> Path:
    """Create ``path`` for ``user`` (the server drops to it, so it must own its folders)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if user is not None:
        entry = pwd.getpwnam(user)
        shutil.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for current, dirs, files in os.walk(path):
        for name in [current, *(os.path.join(current, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def run(argv: list[str], *, env: dict[str, str] | None = None, user: str | None = None,
        timeout: float = 120.0, cwd: Path | None = None) -> str:
    """Run a control command (``rabbitmqctl``, ``pg_ctl``); its output, or `NodeError` with it.

    Output goes to a file, not a pipe: a daemon the command starts would inherit a pipe and keep
    it open long after the command returned."""
    import tempfile

    with tempfile.TemporaryFile() as output:
        try:
            result = subprocess.run(argv, env=env, user=user, cwd=cwd, stdout=output,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=timeout, check=False, **_drop_groups(user))
        except subprocess.TimeoutExpired:
            raise NodeError(f"{' '.join(argv[:4])} did not finish within {timeout:.0f}s") from None
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    if result.returncode != 0:
        raise NodeError(f"{' '.join(argv[:4])} failed ({result.returncode}): {text.strip()[-800:]}")
    return text


def _drop_groups(user: str | None) -> dict[str, object]:
    """Popen keywords that switch to ``user``: its own group, none of ours."""
    if user is None:
        return {}
    return {"group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _kill(process: subprocess.Popen | None, *, group: bool) -> None:
    """SIGKILL a process this module started (its process group when it leads one) and reap it."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(30)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc), e.g. the backends of a postmaster we started."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise NodeError(f"{what} not reached within {timeout:.0f}s")


# -- RabbitMQ ---------------------------------------------------------------------------------------


@dataclass
class RabbitNode:
    """One RabbitMQ node of the run: its own name, ports, folders, config and cookie."""

    name: str
    folder: Path
    cookie_home: Path
    user: str | None
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    management: bool = True
    process: subprocess.Popen | None = None
    #: SIGKILLs this node took (the run reports them).
    kills: int = 0

    @property
    def nodename(self) -> str:
        return f"{self.name}@localhost"

    def url(self, credentials: str = "guest:guest", vhost: str = "%2F") -> str:
        return f"amqp://{credentials}@127.0.0.1:{self.amqp_port}/{vhost}"

    def prepare(self) -> None:
        """Folders, config, env file and plugins file (once, before the first start)."""
        owned_dir(self.folder, self.user, 0o755)
        for sub in ("mnesia", "log"):
            owned_dir(self.folder / sub, self.user)
        (self.folder / "rabbitmq.conf").write_text("\n".join([
            # Our own listener: the machine's config pins 127.0.0.1:5672.
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}",
            "management.tcp.ip = 127.0.0.1",
            f"management.tcp.port = {self.management_port}",
            # Three nodes: the side that loses the majority pauses instead of diverging.
            "cluster_partition_handling = pause_minority",
            "log.console = false",
            "log.file.level = info",
            "",
        ]))
        (self.folder / "rabbitmq-env.conf").write_text("# this node's settings are in its env\n")
        (self.folder / "enabled_plugins").write_text(
            "[rabbitmq_management].\n" if self.management else "[].\n")
        for name in ("rabbitmq.conf", "rabbitmq-env.conf", "enabled_plugins"):
            _chown_tree(self.folder / name, self.user)

    def env(self) -> dict[str, str]:
        folder = str(self.folder)
        return {
            "PATH": _SERVICE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": str(self.cookie_home),  # the run's Erlang cookie, not the machine's
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": f"{folder}/rabbitmq.conf",
            "RABBITMQ_CONF_ENV_FILE": f"{folder}/rabbitmq-env.conf",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{folder}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{folder}/mnesia",
            "RABBITMQ_LOG_BASE": f"{folder}/log",
            "RABBITMQ_PID_FILE": f"{folder}/pid",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> None:
        """Start the server in the background (its own session: signals to us are not its)."""
        if self.process is not None and self.process.poll() is None:
            return
        if port_open(self.amqp_port) or port_open(self.dist_port):
            raise NodeError(f"{self.nodename}: port {self.amqp_port} or {self.dist_port} is"
                            " already taken")
        script = rabbitmq_script("rabbitmq-server")
        with open(self.folder / "log" / "server.out", "ab") as out:
            self.process = subprocess.Popen(
                [str(script)], env=self.env(), cwd=self.folder, user=self.user,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, **_drop_groups(self.user))
        log.info("started RabbitMQ node %s (amqp %s, dist %s, pid %s)", self.nodename,
                 self.amqp_port, self.dist_port, self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the node: the launcher script and the Erlang VM it started (one process
        group, ours), as a machine that loses power. Nothing is flushed, nobody is told."""
        _kill(self.process, group=True)
        self.kills += 1

    def log_tail(self, lines: int = 30) -> str:
        texts = []
        for path in sorted((self.folder / "log").glob("*")):
            with contextlib.suppress(OSError):
                texts.append(f"-- {path.name}\n" + "\n".join(
                    path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)


class RabbitCluster:
    """Three (or ``size``) RabbitMQ nodes clustered with ``rabbitmqctl join_cluster``."""

    def __init__(self, root: Path, *, size: int = 3, management: bool = True,
                 tag: str | None = None) -> None:
        self.root = root
        self.user = service_user("rabbitmq")
        tag = tag or secrets.token_hex(3)
        self.cookie = secrets.token_hex(20).upper()
        self.cookie_home = root / "home"
        #: The CLI runs as us, so it needs the cookie in a HOME we own.
        self.cli_home = root / "cli-home"
        self.nodes = [RabbitNode(name=f"hubchaos{tag}n{n + 1}", folder=root / f"node{n + 1}",
                                 cookie_home=self.cookie_home, user=self.user,
                                 management=management)
                      for n in range(size)]
        #: Set by `stop`: no node is started any more (a disruption thread that is still
        #: restarting one when the run is interrupted must not leave it running).
        self.closed = False

    # -- control -------------------------------------------------------------------------------

    def ctl(self, node: RabbitNode, *args: str, timeout: float = 120.0) -> str:
        """``rabbitmqctl -n <node> ...`` with the run's cookie."""
        env = {"PATH": _SERVICE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(self.cli_home), "ERL_EPMD_ADDRESS": "127.0.0.1",
               "RABBITMQ_CONF_ENV_FILE": str(node.folder / "rabbitmq-env.conf")}
        return run([str(rabbitmq_script("rabbitmqctl")), "-n", node.nodename, *args], env=env,
                   timeout=timeout)

    def start(self, *, timeout: float = 180.0) -> None:
        """Start every node, wait for each, then join the others to the first."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for home, owner in ((self.cookie_home, self.user), (self.cli_home, None)):
            owned_dir(home, owner)
            cookie = home / ".erlang.cookie"
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)
            _chown_tree(cookie, owner)
        for node in self.nodes:
            if self.closed:
                raise NodeError("the cluster is stopped")
            node.prepare()
            node.start()
        for node in self.nodes:
            self.await_running(node, timeout=timeout)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.nodename)
            self.ctl(node, "start_app")
        wait_until(lambda: len(self.running_nodes()) == len(self.nodes), timeout=120,
                   what=f"{len(self.nodes)} running nodes in the cluster")

    def await_running(self, node: RabbitNode, *, timeout: float = 180.0) -> None:
        """Until ``node`` has booted (``rabbitmqctl await_startup``) and takes AMQP connections."""
        deadline = time.monotonic() + timeout
        while True:
            if not node.alive():
                raise NodeError(f"{node.nodename} exited while starting:\n{node.log_tail()}")
            try:
                self.ctl(node, "await_startup", "--timeout", "30", timeout=45)
                break
            except NodeError:
                if time.monotonic() > deadline:
                    raise NodeError(f"{node.nodename} did not start within {timeout:.0f}s:\n"
                                    f"{node.log_tail()}") from None
                time.sleep(1)
        wait_until(lambda: port_open(node.amqp_port), timeout=max(5.0, deadline - time.monotonic()),
                   what=f"{node.nodename} listening on {node.amqp_port}")

    def restart(self, node: RabbitNode, *, timeout: float = 180.0) -> None:
        """Start a killed node again; it rejoins the cluster from its own data folder."""
        if self.closed:
            raise NodeError("the cluster is stopped")
        node.start()
        self.await_running(node, timeout=timeout)

    def running_nodes(self) -> list[str]:
        """Names of the cluster's running nodes, as the first live node sees them."""
        import json

        for node in self.nodes:
            if not node.alive():
                continue
            try:
                status = json.loads(self.ctl(node, "cluster_status", "--formatter", "json",
                                             timeout=60))
            except (NodeError, ValueError):
                continue
            return list(status.get("running_nodes", []))
        return []

    def leaders(self, prefix: str = "") -> dict[str, str]:
        """Queue name -> node name of its quorum leader, for queues starting with ``prefix``."""
        import json

        for node in self.nodes:
            if not node.alive():
                continue
            try:
                rows = json.loads(self.ctl(node, "list_queues", "--formatter", "json", "name",
                                           "leader", timeout=60))
            except (NodeError, ValueError):
                continue
            return {row["name"]: str(row.get("leader") or "") for row in rows
                    if str(row["name"]).startswith(prefix)}
        raise NodeError("no node of the cluster answers list_queues")

    def node_named(self, nodename: str) -> RabbitNode:
        return next(node for node in self.nodes if node.nodename == nodename)

    def urls(self, first: int = 0) -> str:
        """The hub's ``HUB_BROKER_URL``: every node, starting with node ``first`` (so that
        processes spread over the nodes), comma-separated."""
        order = self.nodes[first % len(self.nodes):] + self.nodes[:first % len(self.nodes)]
        return ",".join(node.url() for node in order)

    def stop(self) -> None:
        """Stop every node with ``rabbitmqctl stop`` (SIGKILL of our own process group if it does
        not answer), last started first."""
        self.closed = True
        for node in reversed(self.nodes):
            if not node.alive():
                continue
            try:
                self.ctl(node, "stop", timeout=60)
                node.process.wait(60)  # type: ignore[union-attr]
            except (NodeError, subprocess.TimeoutExpired) as exc:
                log.warning("%s did not stop cleanly (%s): killing it", node.nodename, exc)
                _kill(node.process, group=True)


# -- PostgreSQL -------------------------------------------------------------------------------------


@dataclass
class PostgresServer:
    """One PostgreSQL server of the run (a data folder, a port), started and stopped by us."""

    name: str
    folder: Path
    bindir: Path
    user: str | None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def tool(self, name: str) -> str:
        return str(self.bindir / name)

    def ctl(self, *args: str, timeout: float = 120.0) -> str:
        return run([self.tool("pg_ctl"), "-D", str(self.data), *args], user=self.user,
                   env={"PATH": _SERVICE_PATH, "LANG": "C.UTF-8"}, timeout=timeout,
                   cwd=self.folder)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def start(self, *, timeout: float = 60.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with open(self.folder / "server.log", "ab") as out:
            # The postmaster itself, not `pg_ctl start`: its pid is then ours to SIGKILL.
            self.process = subprocess.Popen(
                [self.tool("postgres"), "-D", str(self.data)], user=self.user, cwd=self.folder,
                env={"PATH": _SERVICE_PATH, "LANG": "C.UTF-8"}, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                **_drop_groups(self.user))
        wait_until(self.accepts, timeout=timeout, what=f"PostgreSQL {self.name} accepting")
        log.info("started PostgreSQL %s on %s (pid %s)", self.name, self.port, self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def accepts(self) -> bool:
        if not self.alive():
            raise NodeError(f"PostgreSQL {self.name} exited:\n{self.log_tail()}")
        return self.query("SELECT 1") is not None

    def query(self, sql: str) -> object | None:
        """First column of the first row of ``sql`` on this server, None if it does not answer."""
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                                 dbname="postgres", connect_timeout=2, autocommit=True) as conn:
                row = conn.execute(sql).fetchone()
                return row[0] if row else None
        except psycopg.Error:
            return None

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend it forked, as a machine that dies: no
        shutdown checkpoint, no goodbye to clients, commits in flight cut."""
        if not self.alive():
            return
        backends = _children(self.process.pid)  # type: ignore[union-attr]
        _kill(self.process, group=False)
        for pid in backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if not self.alive():
            return
        try:
            self.ctl("stop", "-m", "fast", "-w", timeout=60)
            self.process.wait(30)  # type: ignore[union-attr]
        except (NodeError, subprocess.TimeoutExpired) as exc:
            log.warning("PostgreSQL %s did not stop cleanly (%s): killing it", self.name, exc)
            self.kill()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.folder / "server.log").read_text(
                errors="replace").splitlines()[-lines:])
        return ""


class PostgresPair:
    """A primary and a synchronous streaming standby; `fail_over` kills the primary and promotes
    the standby, `rebuild_standby` makes the dead primary's place a standby of the new primary.

    Synchronous: the primary lists the standby in ``synchronous_standby_names`` and keeps
    ``synchronous_commit = on``, so a commit returns only once the standby has flushed it: what
    the hub acknowledged survives the primary's death. The standby starts with no synchronous
    standby of its own, so once promoted it commits alone (nobody to wait for) until
    `rebuild_standby` gives it one.
    """

    def __init__(self, root: Path, *, tag: str | None = None) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise NodeError("PostgreSQL server binaries not found")
        self.root = root
        self.user = service_user("postgres")
        tag = tag or secrets.token_hex(3)
        self.servers = [PostgresServer(name=f"hubchaos{tag}pg{n + 1}", folder=root / f"pg{n + 1}",
                                       bindir=bindir, user=self.user) for n in range(2)]
        self.primary, self.standby = self.servers
        self.promotions = 0
        #: Set by `stop`: nothing is started any more (see `RabbitCluster.closed`).
        self.closed = False

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        primary = self.primary
        owned_dir(primary.folder, self.user)
        run([primary.tool("initdb"), "-D", str(primary.data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], user=self.user, cwd=primary.folder,
            env={"PATH": _SERVICE_PATH, "LANG": "C.UTF-8"}, timeout=180)
        with open(primary.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join([
                "", "# hub chaos --cluster",
                "listen_addresses = '127.0.0.1'",
                f"port = {primary.port}",
                f"unix_socket_directories = '{primary.folder}'",
                "wal_level = replica", "max_wal_senders = 10", "hot_standby = on",
                "wal_keep_size = '256MB'",
                "synchronous_commit = on",
                f"synchronous_standby_names = '{self.standby.name}'",
                "max_connections = 300",
                "", ]))
        primary.start()
        self._make_standby(self.standby, of=primary)
        self.await_sync(self.standby)

    def _make_standby(self, standby: PostgresServer, *, of: PostgresServer) -> None:
        """``pg_basebackup -R`` of ``of`` into ``standby``'s folder, then start it."""
        if self.closed:
            raise NodeError("the database servers are stopped")
        if standby.folder.exists():
            shutil.rmtree(standby.folder)
        owned_dir(standby.folder, self.user)
        run([standby.tool("pg_basebackup"), "-h", "127.0.0.1", "-p", str(of.port), "-U",
             "postgres", "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
             "-d", f"application_name={standby.name}"], user=self.user, cwd=standby.folder,
            env={"PATH": _SERVICE_PATH, "LANG": "C.UTF-8"}, timeout=300)
        with open(standby.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join([
                "", "# this server as a standby of the run",
                f"port = {standby.port}",
                f"unix_socket_directories = '{standby.folder}'",
                # Once promoted it has no standby: it must not wait for one at every commit.
                "synchronous_standby_names = ''",
                "", ]))
        standby.start()

    def await_sync(self, standby: PostgresServer, *, timeout: float = 180.0) -> None:
        """Until the primary streams to ``standby`` synchronously."""
        wait_until(lambda: self.primary.query(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = "
            f"'{standby.name}'") == "sync", timeout=timeout,
            what=f"{standby.name} streaming synchronously")

    def url(self, database: str) -> str:
        """The hub's ``HUB_DATABASE_URL``: both servers, libpq picking the one that takes writes
        (SQLAlchemy's multi-host form of libpq's ``host=h1,h2 port=p1,p2
        target_session_attrs=read-write``)."""
        hosts = "&".join(f"host=127.0.0.1:{server.port}" for server in self.servers)
        return (f"postgresql+psycopg://postgres@/{database}?{hosts}"
                "&target_session_attrs=read-write")

    def fail_over(self) -> float:
        """SIGKILL the primary, promote the standby (``pg_ctl promote``); returns the seconds
        from the kill to the promoted server taking writes."""
        begin = time.monotonic()
        old, new = self.primary, self.standby
        old.kill()
        new.ctl("promote", "-w", timeout=120)
        wait_until(lambda: new.query("SELECT NOT pg_is_in_recovery()") is True, timeout=60,
                   what=f"{new.name} promoted")
        self.primary, self.standby = new, old
        self.promotions += 1
        return time.monotonic() - begin

    def rebuild_standby(self) -> float:
        """Make the dead primary's place (same port) a synchronous standby of the new primary,
        as an operator would once the machine is back; returns the seconds it took."""
        begin = time.monotonic()
        self._make_standby(self.standby, of=self.primary)
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.primary.port, user="postgres",
                             dbname="postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{self.standby.name}'")
            conn.execute("SELECT pg_reload_conf()")
        self.await_sync(self.standby)
        return time.monotonic() - begin

    def stop(self) -> None:
        self.closed = True
        for server in (self.standby, self.primary):
            server.stop()


@contextlib.contextmanager
def scratch(prefix: str = "hub-chaos-cluster-") -> Iterator[Path]:
    """A folder for the run's servers, removed afterwards (readable by the service users)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
