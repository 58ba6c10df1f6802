"""Measurement probes: per-worker resource usage over the measured window, and the run's metadata.

Workers read their own counters with getrusage(2): the same kernel counters psutil reads from /proc, without
importing psutil into every worker (start-up time is part of the harness cost). The parent uses psutil for
the machine-wide metadata.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
import sys
import time
from typing import Any

from . import __version__


class Probe:
    """CPU time, context switches, minor page faults and wall time between ``begin()`` and ``end()``; peak RSS
    at the end."""

    def __init__(self) -> None:
        self._r0: Any = None
        self._r1: Any = None
        self._t0 = self._t1 = 0

    def begin(self) -> None:
        self._r0 = resource.getrusage(resource.RUSAGE_SELF)
        self._t0 = time.perf_counter_ns()

    def end(self) -> None:
        self._t1 = time.perf_counter_ns()
        self._r1 = resource.getrusage(resource.RUSAGE_SELF)

    def result(self) -> dict[str, Any]:
        if self._r0 is None:
            return {}
        r0, r1 = self._r0, self._r1 or resource.getrusage(resource.RUSAGE_SELF)
        return {
            "cpu_user_s": r1.ru_utime - r0.ru_utime,
            "cpu_sys_s": r1.ru_stime - r0.ru_stime,
            "ctx_voluntary": r1.ru_nvcsw - r0.ru_nvcsw,
            "ctx_involuntary": r1.ru_nivcsw - r0.ru_nivcsw,
            "faults_minor": r1.ru_minflt - r0.ru_minflt,  # pages mapped in on first touch (no disk read)
            "maxrss_bytes": r1.ru_maxrss * 1024,  # Linux reports KiB
            "wall_ns": (self._t1 or time.perf_counter_ns()) - self._t0,
            "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        }


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def cpu_model() -> str | None:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def virtualization() -> str | None:
    """A hypervisor name if this looks like a VM (cpuinfo 'hypervisor' flag, DMI vendor), else None."""
    text = _read("/proc/cpuinfo") or ""
    flagged = any(line.startswith("flags") and " hypervisor" in line for line in text.splitlines())
    vendor = _read("/sys/class/dmi/id/sys_vendor")
    if flagged or (vendor and any(v in vendor for v in ("QEMU", "KVM", "VMware", "Xen", "Microsoft", "Amazon"))):
        return vendor or "unknown hypervisor"
    return None


def pipe_size() -> int | None:
    import fcntl

    r, w = os.pipe()
    try:
        return fcntl.fcntl(r, getattr(fcntl, "F_GETPIPE_SZ", 1032))
    except OSError:
        return None
    finally:
        os.close(r)
        os.close(w)


def socket_buffers() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, family, stype in (("tcp", socket.AF_INET, socket.SOCK_STREAM), ("udp", socket.AF_INET, socket.SOCK_DGRAM),
                                ("unix", socket.AF_UNIX, socket.SOCK_STREAM)):
        with socket.socket(family, stype) as s:
            out[f"{kind}_sndbuf_bytes"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            out[f"{kind}_rcvbuf_bytes"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    for key in ("rmem_default", "rmem_max", "wmem_default", "wmem_max"):
        out[f"net_core_{key}"] = _read_int(f"/proc/sys/net/core/{key}")
    for key in ("tcp_rmem", "tcp_wmem"):  # min default max, tab-separated in /proc: one space each here
        text = _read(f"/proc/sys/net/ipv4/{key}")
        out[key] = " ".join(text.split()) if text is not None else None
    return out


def machine_load() -> dict[str, Any]:
    """How busy the machine is now: load average, and /proc/stat's CPU jiffies (all, and stolen by a hypervisor).

    The sweep records one at its start and one at its end (metadata ``load_start``, ``load_end``): the advice
    compares the load with the CPU count and the steal between the two with all the time that passed.
    """
    out: dict[str, Any] = {"load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    line = (_read("/proc/stat") or "").split("\n", 1)[0].split()
    if line[:1] == ["cpu"] and len(line) > 8:
        jiffies = [int(v) for v in line[1:9]]  # user nice system idle iowait irq softirq steal (guest is in user)
        out["cpu_jiffies"] = {"total": sum(jiffies), "steal": jiffies[7]}
    return out


def link_info(address: str) -> dict[str, Any]:
    """The interface of this host that holds ``address`` and its MTU (None where there is none), and every IPv4
    address this host has (what an error about a wrong --remote-address lists)."""
    import psutil

    found: dict[str, Any] = {"address": address, "interface": None, "mtu": None, "addresses": []}
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        for a in addrs:
            if a.family == socket.AF_INET:
                found["addresses"].append(a.address)
                if a.address == address:
                    found["interface"] = name
    if found["interface"] is not None:
        stats = psutil.net_if_stats().get(found["interface"])
        found["mtu"] = stats.mtu if stats is not None else _read_int(f"/sys/class/net/{found['interface']}/mtu")
    return found


def sysinfo() -> dict[str, Any]:
    """Everything a reader needs to reproduce a figure; recorded in every result file."""
    uname = os.uname()
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info: dict[str, Any] = {
        "ipclab_version": __version__,
        "hostname": socket.gethostname(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "os": uname.sysname,
        "kernel": uname.release,
        "machine": uname.machine,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "virtualization": virtualization(),
        "clocksource": _read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "start_method": "subprocess: fresh interpreter per worker (python -m ipclab.worker)",
        "clock": "time.perf_counter_ns (CLOCK_MONOTONIC, shared by all processes of the host)",
        "pipe_size_bytes": pipe_size(),
        "socket_buffers": socket_buffers(),
        "mqueue": {
            "msgsize_max": _read_int("/proc/sys/fs/mqueue/msgsize_max"),
            "msg_max": _read_int("/proc/sys/fs/mqueue/msg_max"),
            "queues_max": _read_int("/proc/sys/fs/mqueue/queues_max"),
        },
        "sysv_msg": {
            "msgmax": _read_int("/proc/sys/kernel/msgmax"),
            "msgmnb": _read_int("/proc/sys/kernel/msgmnb"),
            "msgmni": _read_int("/proc/sys/kernel/msgmni"),
        },
    }
    try:
        import psutil

        vm = psutil.virtual_memory()
        info["memory_total_bytes"] = vm.total
        info["cpu_count_physical"] = psutil.cpu_count(logical=False)
        info["load_average"] = list(os.getloadavg())
    except ImportError:  # pragma: no cover - psutil is a hard dependency, keep sysinfo usable without it
        info["memory_total_bytes"] = None
    return info
