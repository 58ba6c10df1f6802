"""A real headless browser for the tests: Debian's chromium, driven over the DevTools protocol on a pipe.

``--remote-debugging-pipe`` makes chromium read commands on fd 3 and answer on fd 4 (NUL-separated JSON): no
port, no network, nothing another process can connect to. :func:`open_page` loads one file, waits for its load
event, and returns what a reader of the page would meet: every console message, uncaught exception and log
entry (a resource that failed to load is one), the layout of each table and image as the browser drew them
(with the image's decoded size), and a screenshot of the whole page.

The browser runs in its own session with its own profile directory; whatever happens, it is bounded by a
deadline, asked to close, then its process group is killed and any process still naming the profile (the crash
handler starts a session of its own) is killed by pid. :func:`survivors` lets a test check that none is left.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import selectors
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH = 1280

# Where each table and image is, as drawn (CSS pixels; the device scale factor is forced to 1).
LAYOUT_JS = """JSON.stringify({
  width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
  tables: [...document.querySelectorAll('table')].map(e => {
    const r = e.getBoundingClientRect(); return {x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height};
  }),
  images: [...document.images].map(e => {
    const r = e.getBoundingClientRect();
    return {x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height, complete: e.complete,
            natural: [e.naturalWidth, e.naturalHeight]};
  }),
})"""


def find_browser() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    """What the browser saw: messages (console, exceptions, log entries), layout, a full-page PNG."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)
    screenshot: bytes = b""
    stderr: str = ""

    def problems(self) -> list[str]:
        """Every console call, uncaught exception and warning or error log entry, one line each."""
        out = []
        for m in self.messages:
            p = m["params"]
            if m["method"] == "Runtime.consoleAPICalled":
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                              for a in p.get("args", [])))
            elif m["method"] == "Runtime.exceptionThrown":
                details = p["exceptionDetails"]
                out.append(f"exception: {details.get('exception', {}).get('description') or details['text']}")
            elif m["method"] == "Log.entryAdded" and p["entry"]["level"] in ("warning", "error"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}")
        return out


class _Protocol:
    def __init__(self, write_fd: int, read_fd: int, deadline: float) -> None:
        self.write_fd, self.read_fd, self.deadline = write_fd, read_fd, deadline
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.selector = selectors.DefaultSelector()
        self.selector.register(read_fd, selectors.EVENT_READ)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        reply = self.wait(lambda m: m.get("id") == self.next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def drain(self, seconds: float) -> None:
        """Collect what arrives within ``seconds`` (events logged after the load)."""
        deadline, self.deadline = self.deadline, min(self.deadline, time.monotonic() + seconds)
        try:
            self.wait(lambda m: False)
        except TimeoutError:
            pass
        finally:
            self.deadline = deadline

    def wait(self, wanted: Any) -> dict[str, Any]:
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return message
            left = self.deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise EOFError("the browser closed its end of the pipe")
            self.buffer += chunk


def open_page(browser: str, path: str, profile: str, timeout: float = 60.0, width: int = WIDTH) -> Page:
    """Load ``path`` (a file) in headless chromium; see the module docstring."""
    to_browser, from_us = os.pipe()
    to_us, from_browser = os.pipe()

    def on_fds_3_and_4() -> None:  # in the child, before exec: where --remote-debugging-pipe looks
        # Out of the way first: either pipe end may itself be fd 3 or 4 (then dup2 onto itself would keep its
        # close-on-exec flag, or the second dup2 would overwrite the first). dup2 onto another fd makes it
        # inheritable; everything else Python opened is close-on-exec.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        for target, fd in zip((3, 4), high):
            os.dup2(fd, target)
            os.close(fd)

    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
            "--no-default-browser-check", "--disable-crash-reporter", "--disable-extensions", "--hide-scrollbars",
            "--mute-audio", "--force-device-scale-factor=1", f"--window-size={width},900",
            f"--user-data-dir={profile}", "about:blank"]
    # close_fds=False: the child would close 3 and 4 after on_fds_3_and_4 (pass_fds needs them open here first).
    proc = subprocess.Popen(argv, close_fds=False, preexec_fn=on_fds_3_and_4, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(to_browser)
    os.close(from_browser)
    page = Page()
    cdp = _Protocol(from_us, to_us, time.monotonic() + timeout)
    try:
        targets = cdp.send("Target.getTargets")["targetInfos"]
        target = next(t for t in targets if t["type"] == "page")
        session = cdp.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send("Page.navigate", {"url": "file://" + os.path.abspath(path)}, session)
        cdp.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session)
        layout = cdp.send("Runtime.evaluate", {"expression": LAYOUT_JS, "returnByValue": True}, session)
        page.layout = json.loads(layout["result"]["value"])
        shot = cdp.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session)
        page.screenshot = base64.b64decode(shot["data"])
        cdp.drain(0.3)  # a message logged as the page settles still arrives
        try:
            cdp.send("Browser.close")
        except (EOFError, RuntimeError, TimeoutError, OSError):
            pass
        page.messages = [e for e in cdp.events if e["method"] in
                         ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")]
    finally:
        os.close(from_us)
        os.close(to_us)
        _stop(proc, profile)
        assert proc.stderr is not None
        page.stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    return page


def _stop(proc: subprocess.Popen[bytes], profile: str) -> None:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the group is chromium's and nothing else's
    except ProcessLookupError:
        pass
    proc.wait()
    for pid in survivors(profile):  # started by this browser in a session of their own (crash handler)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def survivors(profile: str) -> list[int]:
    """Live (not zombie) processes whose command line names ``profile``: a browser this module started."""
    found = []
    needle = profile.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found
