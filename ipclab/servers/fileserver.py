"""file: a client names a file under --root and gets its bytes, framed so that an error is never taken for content.

Protocol (one request per connection, like HTTP/1.0 or gopher):

    request:  NAME\\n              UTF-8 path relative to the root, at most --max-request bytes; "\\r\\n" and
                                  end-of-stream also end it
    reply:    OK <length>\\n<length bytes of the file>
          or  ERR <length>\\n<length bytes: "<code>: <explanation>\\n">
    then the server closes the connection. The request must be whole within --idle-timeout of connecting (a
    client trickling it in byte by byte is dropped then: it cannot hold a slot); "NAME/" is refused.

Error codes: ``bad-request`` (not UTF-8, empty, NUL byte, longer than --max-request), ``forbidden`` (absolute path,
a ``..`` component, a symbolic link that leads outside the root, permission denied), ``not-found``,
``not-a-file`` (directory, device, FIFO, socket: only regular files are served), ``busy`` (--max-clients reached).

Safety: the name is checked lexically (no absolute path, no ``..``), then resolved (symbolic links that stay
inside the root are followed, ones that leave it are refused), then opened component by component from the root
with O_NOFOLLOW, so a link swapped in between the check and the open is refused rather than followed; the open is
non-blocking (a FIFO cannot hang the server) and fstat must say "regular file".
"""

from __future__ import annotations

import errno
import os
import stat

from .loop import Conn

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class FileError(Exception):
    """A request the server refuses: ``code`` is the machine-readable word of the ERR reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def error_reply(code: str, message: str) -> bytes:
    body = f"{code}: {message}\n".encode()
    return b"ERR %d\n" % len(body) + body


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _lstat_mode(name: str, dfd: int) -> int | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode
    except OSError:
        return None


def open_under(root: str, name: str) -> tuple[int, int]:
    """Open the regular file ``name`` under ``root`` (a real, absolute path); return (fd, size) or raise FileError."""
    if not name:
        raise FileError("bad-request", "empty file name; send a name such as hello.txt followed by a newline")
    if "\x00" in name:
        raise FileError("bad-request", "NUL byte in the file name")
    if name.startswith("/"):
        raise FileError("forbidden", "absolute paths are refused; name a file relative to the served root")
    parts = name.split("/")
    if ".." in parts:
        raise FileError("forbidden", "'..' is refused; name a file inside the served root")
    if len(parts) > 1 and parts[-1] in ("", "."):  # "hello.txt/" names a directory, whatever hello.txt is
        raise FileError("not-a-file", f"{name} ends with '/' (or '/.'), which names a directory; only regular "
                                      "files are served: drop the trailing slash")
    parts = [p for p in parts if p not in ("", ".")]
    if not parts:
        raise FileError("not-a-file", "the root itself is a directory; name a file inside it")
    real = os.path.realpath(os.path.join(root, *parts))
    if real != root and os.path.commonpath([root, real]) != root:
        raise FileError("forbidden", f"{name} is a symbolic link (or under one) that leads outside the served root")
    rel = os.path.relpath(real, root).split(os.sep)
    if rel == ["."]:
        raise FileError("not-a-file", f"{name} is the root directory")
    dfd = os.open(root, _DIR_FLAGS)
    try:
        for part in rel[:-1]:
            nfd = os.open(part, _DIR_FLAGS, dir_fd=dfd)
            os.close(dfd)
            dfd = nfd
        fd = os.open(rel[-1], _FILE_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        raise FileError("not-found", f"no such file: {name}") from None
    except PermissionError:
        raise FileError("forbidden", f"permission denied: {name}") from None
    except OSError as exc:  # ELOOP/ENOTDIR: a link appeared after the check; anything else is refused too
        if exc.errno == errno.ENXIO:  # open(2) of a socket file: say what it is, not "no such device"
            mode = _lstat_mode(rel[-1], dfd)
            if mode is not None and not stat.S_ISREG(mode):
                raise FileError("not-a-file", f"{name} is {_kind(mode)}; only regular files are served") from None
        raise FileError("forbidden", f"{name}: {exc.strerror or exc}") from None
    finally:
        os.close(dfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileError("not-a-file", f"{name} is {_kind(st.st_mode)}; only regular files are served")
    return fd, st.st_size


class FileService:
    name = "file"
    request_deadline = True  # the whole name must arrive within --idle-timeout of the accept

    def __init__(self, root: str, max_request: int) -> None:
        self.root = os.path.realpath(root)
        self.max_request = max_request

    def on_connect(self, conn: Conn) -> None:
        pass

    def on_data(self, conn: Conn, data: bytes) -> None:
        conn.inbuf += data
        end = conn.inbuf.find(b"\n")
        if end < 0:
            if len(conn.inbuf) > self.max_request:
                self._refuse(conn, FileError("bad-request", f"request longer than {self.max_request} bytes "
                                             "(--max-request) without a newline"))
            return
        self._answer(conn, bytes(conn.inbuf[:end]))

    def on_eof(self, conn: Conn) -> None:
        if conn.inbuf:  # a name without a trailing newline, ended by the client's shutdown
            self._answer(conn, bytes(conn.inbuf))
        conn.finish()

    def _answer(self, conn: Conn, line: bytes) -> None:
        conn.done = True
        conn.inbuf.clear()
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            if len(line) > self.max_request:
                raise FileError("bad-request", f"request longer than {self.max_request} bytes (--max-request)")
            try:
                name = line.decode("utf-8")
            except UnicodeDecodeError:
                raise FileError("bad-request", "the file name is not valid UTF-8") from None
            fd, size = open_under(self.root, name)
        except FileError as exc:
            self._refuse(conn, exc)
            return
        conn.write(b"OK %d\n" % size)
        conn.send_file(fd, size)
        conn.finish()

    def _refuse(self, conn: Conn, exc: FileError) -> None:
        conn.done = True
        conn.inbuf.clear()
        conn.write(error_reply(exc.code, str(exc)))
        conn.finish()

    def on_datagram(self, data: bytes) -> bytes | None:
        return None  # never reached: the command refuses --udp for the file server

    def busy(self, limit: int) -> bytes:
        return error_reply("busy", f"too many clients ({limit} connections, --max-clients); try again later")
