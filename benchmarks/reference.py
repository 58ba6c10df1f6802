"""Reference tools written in C, run on ipclab's work: iperf3 (TCP stream) and sockperf (TCP/UDP ping-pong).

Install on Debian/Ubuntu: ``sudo apt-get install iperf3 sockperf``. Both only listen on 127.0.0.1 here,
on a port the kernel just handed out, and both are pinned like ipclab's workers (iperf3 -A, sockperf under
taskset). A server this module starts is always killed by its pid in a ``finally``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from typing import Any

HOST = "127.0.0.1"


def available() -> dict[str, str | None]:
    """Tool name -> path, or None when it is not installed."""
    return {"iperf3": shutil.which("iperf3"), "sockperf": shutil.which("sockperf"), "taskset": shutil.which("taskset")}


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def iperf3_stream(size: int, total_bytes: int, cpus: tuple[int, int] | None) -> dict[str, Any]:
    """TCP stream of ``size``-byte writes, ``total_bytes`` in all; MB/s at the receiver (1 MB = 1e6 bytes).

    -N sets TCP_NODELAY as ipclab's tcp transport does; -A pins server and client like ipclab's placement.
    """
    port = _free_port(socket.SOCK_STREAM)
    srv_argv = ["iperf3", "-s", "-1", "-B", HOST, "-p", str(port)]
    cli_argv = ["iperf3", "-c", HOST, "-p", str(port), "-N", "-l", str(size), "-n", str(total_bytes), "-J"]
    if cpus:
        srv_argv += ["-A", str(cpus[0])]
        cli_argv += ["-A", str(cpus[1])]
    server = subprocess.Popen(srv_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):  # the server needs a moment to listen; the client fails fast until it does
            out = subprocess.run(cli_argv, capture_output=True, timeout=60)
            data = json.loads(out.stdout or b"{}")
            if "error" not in data and "end" in data:
                received = data["end"]["sum_received"]
                return {"mb_s": received["bits_per_second"] / 8e6, "seconds": received["seconds"]}
            time.sleep(0.05)
        raise RuntimeError(f"iperf3 client failed: {data.get('error', out.stderr.decode()[-200:])}")
    finally:
        _stop(server)


_P50 = re.compile(rb"percentile 50\.000 =\s*([0-9.]+)")


def sockperf_pingpong(proto: str, size: int, seconds: float, cpus: tuple[int, int] | None) -> dict[str, Any]:
    """sockperf ping-pong round trip p50 in us (--full-rtt: the whole round trip, as ipclab reports)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    port = _free_port(kind)
    flag = ["--tcp"] if proto == "tcp" else []
    s_cpu, c_cpu = cpus if cpus else (None, None)
    server = subprocess.Popen(_pinned(s_cpu, ["sockperf", "sr", *flag, "-i", HOST, "-p", str(port)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # sockperf's server prints nothing machine-readable when ready
        argv = _pinned(c_cpu, ["sockperf", "pp", *flag, "-i", HOST, "-p", str(port), "-m", str(size),
                               "-t", str(seconds), "--mps=max", "--full-rtt"])
        out = subprocess.run(argv, capture_output=True, timeout=seconds + 30)
        m = _P50.search(out.stdout + out.stderr)
        if not m:
            raise RuntimeError(f"sockperf gave no p50: {(out.stdout + out.stderr).decode()[-300:]}")
        return {"rtt_p50_us": float(m.group(1))}
    finally:
        _stop(server)
