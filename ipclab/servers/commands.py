"""``ipclab serve echo|time|file``: the classic socket servers, runnable for real clients (nc, socat, Python).

This module owns the command line (flags, validation, the client one-liners in --help) and the process life:
print the bound address, serve until SIGINT/SIGTERM, clean up, exit 130/143.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import signal
import socket
import sys
from typing import Any

from ..errors import ConfigError
from .loop import DATAGRAM_MAX, Server, ServerConfig, Service, Stop

SERVICES = ("echo", "time", "file")
MAX_CLIENTS_LIMIT = 10000
DEFAULT_MAX_CLIENTS = 64
DEFAULT_IDLE = 60.0
DEFAULT_REQUEST = {"file": 1024}  # echo/time over UDP: the largest datagram

CLIENTS = """\
clients (copy-paste; PORT is the port the server prints when it starts; nc is Debian's
netcat-openbsd: -N closes the sending side at the end of input, -w1 waits 1 s for a UDP reply):
  echo   nc -N 127.0.0.1 PORT              type lines, they come back; Ctrl-D finishes
         socat - TCP:127.0.0.1:PORT
         python3 -c "import socket as S; s=S.create_connection(('127.0.0.1',PORT)); \\
s.send(b'hi'); print(s.recv(99))"
  echo --udp
         nc -u -w1 127.0.0.1 PORT          each line is one datagram, echoed back
         python3 -c "import socket as S; s=S.socket(S.AF_INET,S.SOCK_DGRAM); \\
s.sendto(b'hi',('127.0.0.1',PORT)); print(s.recv(99))"
  time   nc -N 127.0.0.1 PORT </dev/null   prints one line (ISO 8601 and ctime) and closes
         python3 -c "import socket as S; \\
print(S.create_connection(('127.0.0.1',PORT)).recv(99).decode())"
  time --udp
         echo | nc -u -w1 127.0.0.1 PORT   any datagram gets the time line back
         echo | socat - UDP:127.0.0.1:PORT
  file   printf 'hello.txt\\n' | nc -N 127.0.0.1 PORT
         reply: "OK <length>" + the bytes, or "ERR <length>" + why
         python3 -c "import socket as S; s=S.create_connection(('127.0.0.1',PORT)); \\
s.send(b'hello.txt\\n'); print(s.makefile('rb').read())"
  --unix PATH (any service)
         nc -N -U PATH                     socat - UNIX-CONNECT:PATH
         python3 -c "import socket as S; s=S.socket(S.AF_UNIX); s.connect('PATH'); \\
s.send(b'hi'); print(s.recv(99))"

limits: at most --max-clients connections; the next one reads "ipclab: server busy
(N connections), try again later" (file: "ERR ... busy: ...") and is closed. A client without
progress for --idle-timeout seconds is dropped, and so is one that reads none of its replies for
that long; file: the request must be whole --idle-timeout seconds after connecting. A client that
does not read its replies is not read either (bounded buffer per client).
Ctrl-C / SIGTERM stop the server cleanly: exit status 130 / 143, Unix socket removed.
"""


def parse_bind(text: str) -> tuple[str, int, int]:
    """'HOST:PORT', '[v6]:PORT', 'PORT', ':PORT' or 'HOST' -> (numeric host, port, family)."""
    text = text.strip()
    host, port_text = "127.0.0.1", "0"
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket or not inner or (rest and not rest.startswith(":")):
            raise ConfigError(f"--bind: {text!r} is not [IPv6]:PORT (a bracket is missing or misplaced); write "
                              "e.g. [::1]:9000, or ::1 alone")
        host, port_text = inner, rest[1:] or "0"
    elif text.isdigit():
        port_text = text
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        host = host or "127.0.0.1"
    elif text:
        host = text
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--bind: port {port_text!r} is not 0..65535; write HOST:PORT, e.g. 127.0.0.1:9000 "
                          "(0 = any free port)") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ConfigError(f"--bind: cannot resolve host {host!r}; use an address such as 127.0.0.1 or ::1") from None
    family, _, _, _, addr = infos[0]
    return str(addr[0]), port, int(family)


def _number(value: str | None, flag: str, default: float, low: float, high: float, *, whole: bool) -> Any:
    if value is None:
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        kind = "a whole number" if whole else "a number of seconds"
        raise ConfigError(f"{flag}: {value!r} is not {kind}; give {low:g}..{high:g}") from None
    if not low <= number <= high or number != number:
        raise ConfigError(f"{flag}: {value} is out of range; give {low:g}..{high:g}")
    return number


def build_config(args: argparse.Namespace) -> ServerConfig:
    """Validate the flags into a ServerConfig; ConfigError (one line, exit 2) on anything wrong."""
    service = args.service
    kind = "udp" if args.udp else "unix" if args.unix is not None else "tcp"
    if service == "file" and kind == "udp":
        raise ConfigError("--udp: the file server needs a stream (a file does not fit a datagram); "
                          "use --tcp or --unix PATH")
    if args.root is not None and service != "file":
        raise ConfigError(f"--root: only the file server serves files; drop --root for {service}")
    root = None
    if service == "file":
        if args.root is None:
            raise ConfigError("file: --root DIR is required (the directory whose files may be served)")
        if not os.path.isdir(args.root):
            raise ConfigError(f"--root: {args.root!r} is not a directory; give an existing directory")
        root = os.path.realpath(args.root)
    if kind == "unix" and args.bind is not None:
        raise ConfigError("--bind: a Unix socket has a path, not an address; use --unix PATH or --bind, not both")
    host, port, family = "127.0.0.1", 0, int(socket.AF_INET)
    if args.bind is not None:
        host, port, family = parse_bind(args.bind)
    path = None
    if kind == "unix":
        path = _check_unix_path(args.unix)
    soft = _fd_limit()
    max_clients = _number(args.max_clients, "--max-clients", DEFAULT_MAX_CLIENTS, 1,
                          min(MAX_CLIENTS_LIMIT, max(1, soft - 32)), whole=True)
    idle = _number(args.idle_timeout, "--idle-timeout", DEFAULT_IDLE, 0.05, 86400.0, whole=False)
    request_default = DEFAULT_REQUEST.get(service, DATAGRAM_MAX)
    max_request = _number(args.max_request, "--max-request", request_default, 1,
                          DATAGRAM_MAX if kind == "udp" else 65536, whole=True)
    return ServerConfig(service=service, kind=kind, host=host, port=port, family=family, path=path, root=root,
                        max_clients=max_clients, idle_timeout=idle, max_request=max_request, quiet=args.quiet)


def _fd_limit() -> int:
    try:
        import resource

        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1024


def _check_unix_path(path: str) -> str:
    if not path or len(os.fsencode(path)) > 107:
        raise ConfigError(f"--unix: {path!r} is empty or longer than 107 bytes (the sun_path limit); use a shorter "
                          "path such as /tmp/echo.sock")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(f"--unix: directory {parent!r} does not exist; create it or choose another path")
    if os.path.lexists(path):
        import stat

        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ConfigError(f"--unix: {path!r} exists and is not a socket; choose another path")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # a stale socket: its server is gone
        except OSError as exc:
            raise ConfigError(f"--unix: cannot check the existing socket {path!r} ({exc.strerror}); remove it "
                              "or choose another path") from None
        else:
            raise ConfigError(f"--unix: a server is already listening on {path!r}; stop it or choose another path")
        finally:
            probe.close()
    return path


def make_service(cfg: ServerConfig) -> Service:
    if cfg.service == "echo":
        from .echo import EchoService

        return EchoService()
    if cfg.service == "time":
        from .daytime import TimeService

        return TimeService()
    from .fileserver import FileService

    assert cfg.root is not None
    return FileService(cfg.root, cfg.max_request)


def _try_line(cfg: ServerConfig, where: str) -> str:
    """A client command for netcat-openbsd (Debian's nc) that works against this server as it was started."""
    if cfg.kind == "unix":
        return f"printf 'NAME\\n' | nc -N -U {cfg.path}" if cfg.service == "file" else f"nc -N -U {cfg.path}"
    host, _, port = where.split(" ", 1)[1].rpartition(":")
    host = dialable(host.strip("[]"))
    if cfg.kind == "udp":
        return f"echo | nc -u -w1 {host} {port}" if cfg.service == "time" else f"nc -u -w1 {host} {port}"
    if cfg.service == "file":
        return f"printf 'NAME\\n' | nc -N {host} {port}"
    if cfg.service == "time":
        return f"nc -N {host} {port} </dev/null"
    return f"nc -N {host} {port}"


def dialable(host: str) -> str:
    """The address a client on this machine dials: a wildcard (0.0.0.0, ::) is no address to connect to, so the
    loopback address of its family stands for it."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "::1"
    return host


def cmd_serve(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    server = Server(cfg, make_service(cfg))
    stopped: Stop | None = None

    def on_signal(signum: int, frame: Any) -> None:
        # Only a flag and a wake-up byte: an exception raised here could land in the middle of the loop's
        # bookkeeping (or of close()), and the socket file would be left behind.
        server.request_stop(signum)

    # Kept until the process ends: a second signal during the shutdown changes nothing (the CLI's entry point
    # keeps a handler too once main returns), so the exit status stays 130/143 and the line one.
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    old_wakeup = signal.set_wakeup_fd(server.wakeup_fd(), warn_on_full_buffer=False)
    try:
        try:
            where = server.open()
        except OSError as exc:
            raise ConfigError(_bind_error(cfg, exc)) from None
        if cfg.kind != "unix" and not ipaddress.ip_address(cfg.host.split("%")[0]).is_loopback:
            print(f"ipclab: warning: listening on {cfg.host}: reachable from other machines", file=sys.stderr)
        root = f" serving {cfg.root}" if cfg.root else ""
        print(f"{cfg.service} server listening on {where}{root} (pid {os.getpid()}); Ctrl-C stops it", flush=True)
        hint = _try_line(cfg, where)
        if cfg.kind != "unix" and dialable(cfg.host) != cfg.host:
            hint += "   (from another machine: this machine's address instead)"
        print(f"try: {hint}", flush=True)
        server.serve_forever()
    except Stop as exc:
        stopped = exc
    finally:
        signal.set_wakeup_fd(old_wakeup)  # before close() closes the socket it names
        server.close()
    assert stopped is not None
    print(f"ipclab: {cfg.service} server stopped by {stopped} after {server.served} "
          f"{'datagram(s)' if cfg.kind == 'udp' else 'connection(s)'}", file=sys.stderr)
    return 128 + stopped.signum


def _bind_error(cfg: ServerConfig, exc: OSError) -> str:
    what = cfg.path if cfg.kind == "unix" else f"{cfg.host}:{cfg.port}"
    flag = "--unix" if cfg.kind == "unix" else "--bind"
    if exc.errno == errno.EADDRINUSE:
        return f"{flag}: {what} is already in use; stop the other server or choose another (port 0 = any free one)"
    if exc.errno == errno.EACCES:
        return f"{flag}: not allowed to listen on {what} (ports below 1024 need privileges); choose a port >= 1024"
    return f"{flag}: cannot listen on {what}: {exc.strerror or exc}"
