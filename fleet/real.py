# SPDX-License-Identifier: Apache-2.0
"""Real TLS server software as subprocesses on loopback: nginx (many certificates on many
ports, and several names on one port) and ``openssl s_server`` (e.g. a TLS 1.0-only endpoint).

Each is a context manager that returns once every port accepts connections and kills the
process on exit. Neither program is a Python package: :func:`find` says whether it is installed
(``make test`` installs the Debian packages ``nginx-light`` and ``openssl``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleet import pki

LOOPBACK = "127.0.0.1"
_STARTUP = 10.0


def find(program: str) -> str | None:
    """The path of ``program``, also in the sbin directories a non-root PATH lacks."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which(program, path=path)


def free_ports(count: int) -> list[int]:
    """``count`` loopback ports that were free a moment ago (the kernel may hand them out
    again, so callers retry when a bind fails)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait_accepting(proc: subprocess.Popen, ports: Sequence[int], log: Path) -> None:
    deadline = time.monotonic() + _STARTUP
    pending = list(ports)
    while pending:
        if proc.poll() is not None or time.monotonic() > deadline:
            output = log.read_text(errors="replace") if log.exists() else ""
            msg = f"{proc.args[0]} did not start (exit {proc.poll()}):\n{output}"
            raise RuntimeError(msg)
        try:
            with socket.create_connection((LOOPBACK, pending[0]), timeout=1.0):
                pending.pop(0)
        except OSError:
            time.sleep(0.02)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass(frozen=True)
class Site:
    """One nginx ``server`` block: ``issued`` for ``names`` (empty: the default server)."""

    key: str
    issued: pki.Issued
    names: tuple[str, ...] = ()


@dataclass
class Nginx:
    """A running nginx: ``ports[key]`` serves that site alone; ``shared_port`` serves every
    shared site, chosen by SNI; ``issued[key]`` is what each site presents."""

    ports: dict[str, int] = field(default_factory=dict)
    issued: dict[str, pki.Issued] = field(default_factory=dict)
    shared_port: int | None = None
    prefix: Path | None = None


_NGINX_MAIN = """\
daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets off;
    ssl_session_cache off;
{servers}}}
"""

_NGINX_SERVER = """\
    server {{
        listen {host}:{port} ssl{default};
        server_name {names};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        return 200 "{site}\\n";
    }}
"""


@contextlib.contextmanager
def nginx(
    sites: Sequence[Site],
    prefix: Path,
    *,
    shared: Sequence[Site] = (),
    workers: int = 1,
) -> Iterator[Nginx]:
    """Run nginx from ``prefix`` (config, keys, logs): each of ``sites`` on a port of its own,
    and all of ``shared`` on one more port, the first as the default server."""
    binary = find("nginx")
    if binary is None:
        msg = "nginx is not installed"
        raise FileNotFoundError(msg)
    prefix.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        ports = free_ports(len(sites) + bool(shared))
        running = Nginx(prefix=prefix, issued={s.key: s.issued for s in (*sites, *shared)})
        blocks = []
        for site, port in zip(sites, ports, strict=False):
            running.ports[site.key] = port
            blocks.append(_server_block(site, port, prefix, default=True))
        if shared:
            running.shared_port = ports[-1]
            for i, site in enumerate(shared):
                blocks.append(_server_block(site, ports[-1], prefix, default=i == 0))
        conf = prefix / "nginx.conf"
        conf.write_text(_NGINX_MAIN.format(prefix=prefix, workers=workers, servers="".join(blocks)))
        log = prefix / "error.log"
        proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_accepting(proc, ports, log)
        except RuntimeError:
            _stop(proc)
            if attempt == 2 or "Address already in use" not in log.read_text(errors="replace"):
                raise
            continue
        try:
            yield running
        finally:
            _stop(proc)
        return


def _server_block(site: Site, port: int, prefix: Path, *, default: bool) -> str:
    cert, key = site.issued.write(prefix / "pki", site.key)
    return _NGINX_SERVER.format(
        host=LOOPBACK,
        port=port,
        default=" default_server" if default else "",
        names=" ".join(site.names) or '""',
        cert=cert,
        key=key,
        site=site.key,
    )


@dataclass
class SServer:
    """A running ``openssl s_server``."""

    port: int
    chain: list[bytes]


@contextlib.contextmanager
def openssl_s_server(issued: pki.Issued, directory: Path, *options: str) -> Iterator[SServer]:
    """Run ``openssl s_server -www`` presenting ``issued`` with extra ``options`` (e.g.
    ``-tls1 -cipher DEFAULT@SECLEVEL=0``) on a loopback port it picks itself."""
    binary = find("openssl")
    if binary is None:
        msg = "openssl is not installed"
        raise FileNotFoundError(msg)
    cert, key = issued.write(directory, "s_server")
    log = directory / "s_server.log"
    command = [binary, "s_server", "-accept", f"{LOOPBACK}:0", "-cert", str(cert), "-key", str(key)]
    if len(issued.chain) > 1:  # -cert reads only the leaf; the rest goes in -cert_chain
        above = directory / "s_server-chain.crt"
        above.write_bytes(b"".join(c.public_bytes(pki.Encoding.PEM) for c in issued.chain[1:]))
        command += ["-cert_chain", str(above)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "-www", *options],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + _STARTUP
        # It prints the address it bound, e.g. "ACCEPT 127.0.0.1:40123".
        while not (match := re.search(rb"ACCEPT \S+:(\d+)", log.read_bytes())):
            if proc.poll() is not None or time.monotonic() > deadline:
                msg = f"openssl s_server did not start:\n{log.read_text(errors='replace')}"
                raise RuntimeError(msg)
            time.sleep(0.02)
        port = int(match.group(1))
        _wait_accepting(proc, [port], log)
        yield SServer(port, issued.chain_der)
    finally:
        _stop(proc)


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (``initdb``, ``postgres``): Debian's
    ``/usr/lib/postgresql/<version>/bin``, the newest; ``None`` when it is not installed."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class Postgres:
    """A running PostgreSQL server."""

    port: int
    chain: list[bytes]


@contextlib.contextmanager
def postgres(issued: pki.Issued, directory: Path, *, ssl: bool = True) -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster in ``directory`` on a free loopback port, with ``ssl=on``
    presenting ``issued`` (or ``ssl=off``). Run as the ``postgres`` user when the tests run as
    root (PostgreSQL refuses root), in a directory of its own under the system's temporary
    directory (pytest's are root's alone). Stopped, and that directory removed, on exit."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        msg = "PostgreSQL is not installed (Debian: postgresql)"
        raise FileNotFoundError(msg)
    user = "postgres" if os.geteuid() == 0 else None
    with contextlib.ExitStack() as cleanup:
        if user is not None:
            directory = Path(tempfile.mkdtemp(prefix="pinscan-pg-"))
            cleanup.callback(shutil.rmtree, directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = issued.write(directory, "server")
        if user is not None:
            for path in (directory, cert, key):
                shutil.chown(path, user)
        key.chmod(0o600)
        yield from _postgres(bin_dir, directory, cert, key, user, ssl, issued.chain_der)


def _postgres(
    bin_dir: Path,
    directory: Path,
    cert: Path,
    key: Path,
    user: str | None,
    ssl: bool,
    chain: list[bytes],
) -> Iterator[Postgres]:
    data, log = directory / "data", directory / "postgres.log"
    with log.open("wb") as out:
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True, user=user,
        )  # fmt: skip
    for _attempt in range(3):
        [port] = free_ports(1)
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(port),
            "unix_socket_directories": str(directory),
            "ssl": "on" if ssl else "off",
            "ssl_cert_file": str(cert),
            "ssl_key_file": str(key),
            "fsync": "off",
            "shared_buffers": "8MB",
            "max_connections": "10",
        }
        command = [str(bin_dir / "postgres"), "-D", str(data)]
        command += [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, user=user
            )
        try:
            _wait_accepting(proc, [port], log)
        except RuntimeError:
            _stop(proc)
            if b"could not bind" in log.read_bytes():
                continue  # the port was taken meanwhile
            raise
        try:
            yield Postgres(port, chain)
        finally:
            _stop(proc)
        return
    msg = f"PostgreSQL found no free port:\n{log.read_text(errors='replace')}"
    raise RuntimeError(msg)


@dataclass
class Dovecot:
    """A running Dovecot: IMAP and POP3 with STARTTLS (``imap``, ``pop3``), and implicit TLS
    (``imaps``, ``pop3s``), each on its own port."""

    ports: dict[str, int]
    chain: list[bytes]


_DOVECOT_CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = {ssl}
ssl_cert = <{dir}/server.crt
ssl_key = <{dir}/server.key
disable_plaintext_auth = no
mail_location = maildir:{dir}/mail
{users}
passdb {{
  driver = static
  args = password=unused
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


@contextlib.contextmanager
def dovecot(issued: pki.Issued, *, ssl: bool = True) -> Iterator[Dovecot]:
    """Dovecot (Debian: dovecot-imapd, dovecot-pop3d) on free loopback ports, in a directory of
    its own under the system's temporary directory, presenting ``issued``; ``ssl=False``
    offers no STARTTLS (and no implicit TLS port)."""
    binary = find("dovecot")
    if binary is None:
        msg = "Dovecot is not installed (Debian: dovecot-imapd dovecot-pop3d)"
        raise FileNotFoundError(msg)
    with contextlib.ExitStack() as cleanup:
        directory = Path(tempfile.mkdtemp(prefix="pinscan-dovecot-"))
        cleanup.callback(shutil.rmtree, directory, ignore_errors=True)
        directory.chmod(0o755)  # its login processes run as other users
        issued.write(directory, "server")
        names = ("imap", "imaps", "pop3", "pop3s")
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        if os.geteuid() == 0:
            users, uid, gid = "", "nobody", "nogroup"
        else:  # an unprivileged Dovecot runs everything as its own user
            me = str(os.getuid())
            users = f"default_internal_user = {me}\ndefault_login_user = {me}"
            uid, gid = me, str(os.getgid())
        conf = directory / "dovecot.conf"
        conf.write_text(
            _DOVECOT_CONF.format(
                dir=directory, ssl="yes" if ssl else "no", users=users, uid=uid, gid=gid, **ports
            )
        )
        log = directory / "dovecot.log"
        proc = subprocess.Popen(
            [binary, "-F", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_accepting(proc, [ports["imap"], ports["pop3"]], log)
            yield Dovecot(ports, issued.chain_der)
        finally:
            _stop(proc)


@dataclass
class Daemon:
    """A running server on one loopback port."""

    port: int
    chain: list[bytes]


@contextlib.contextmanager
def _private_directory(prefix: str, owner: str | None = None) -> Iterator[Path]:
    """A directory of its own under the system's temporary directory, that the daemon's users
    reach (pytest's are root's alone), removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        directory.chmod(0o755)
        if owner is not None:
            shutil.chown(directory, owner)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def slapd(issued: pki.Issued, *, tls: bool = True) -> Iterator[Daemon]:
    """OpenLDAP's slapd (Debian: slapd) on a free loopback port, with no database: enough to
    answer the StartTLS extended operation, presenting ``issued`` (``tls=False``: no TLS
    configured, so StartTLS is refused)."""
    binary = find("slapd")
    if binary is None:
        msg = "slapd is not installed (Debian: slapd)"
        raise FileNotFoundError(msg)
    with _private_directory("pinscan-slapd-") as directory:
        cert, key = issued.write(directory, "server")
        conf = directory / "slapd.conf"
        lines = [
            "include /etc/ldap/schema/core.schema",
            f"pidfile {directory}/slapd.pid",
            f"argsfile {directory}/slapd.args",
        ]
        if tls:
            lines += [f"TLSCertificateFile {cert}", f"TLSCertificateKeyFile {key}"]
        conf.write_text("\n".join(lines) + "\n")
        log = directory / "slapd.log"
        [port] = free_ports(1)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary, "-f", str(conf), "-h", f"ldap://{LOOPBACK}:{port}/", "-d", "0"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            _wait_accepting(proc, [port], log)
            yield Daemon(port, issued.chain_der)
        finally:
            _stop(proc)


_EXIM = "Debian-exim"


@contextlib.contextmanager
def exim(issued: pki.Issued, *, tls: bool = True) -> Iterator[Daemon]:
    """Exim (Debian: exim4-daemon-light) as an SMTP daemon on a free loopback port with a
    configuration of its own (``-C``), which accepts no mail and advertises STARTTLS with
    ``issued`` (``tls=False``: advertises none). Needs root: Exim runs its daemon as root and
    its deliveries as Debian-exim."""
    binary = find("exim4") or find("exim")
    if binary is None:
        msg = "Exim is not installed (Debian: exim4-daemon-light)"
        raise FileNotFoundError(msg)
    with _private_directory("pinscan-exim-", owner=_EXIM) as directory:  # its logs are there
        cert, key = issued.write(directory, "server")
        (directory / "spool").mkdir()
        for path in (directory / "spool", cert, key):
            shutil.chown(path, _EXIM)
        [port] = free_ports(1)
        conf = directory / "exim.conf"
        conf.write_text(
            "primary_hostname = mx.test\n"
            f"daemon_smtp_ports = {port}\n"
            f"local_interfaces = {LOOPBACK}\n"
            f"spool_directory = {directory}/spool\n"
            f"log_file_path = {directory}/%slog\n"
            f"pid_file_path = {directory}/exim.pid\n"
            f"tls_advertise_hosts = {'*' if tls else ''}\n"
            f"tls_certificate = {cert}\n"
            f"tls_privatekey = {key}\n"
            "acl_smtp_rcpt = refuse\n"
            "begin acl\n"
            "refuse:\n"
            "  deny\n"
        )
        conf.chmod(0o644)  # Exim reads only a configuration no one else may write
        log = directory / "exim.out"
        with log.open("wb") as out:
            # A session of its own: the daemon forks a process per connection, which outlives
            # the daemon long enough to log into a removed directory (and make it again).
            proc = subprocess.Popen(
                [binary, "-bdf", "-C", str(conf)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            _wait_accepting(proc, [port], log)
            yield Daemon(port, issued.chain_der)
        finally:
            _stop(proc)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group it leads: its children
            time.sleep(0.05)
