"""This computer's CPU, said without importing torch: its cores, model name and feature flags (one
reader of /proc/cpuinfo's flags for the whole app)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import psutil


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def physical_cores() -> int:
    """Physical cores this process may run on: a second hardware thread of a core adds little to
    matrix work, and threads on every logical CPU leave none for the window."""
    if sys.platform.startswith("linux"):
        cores = _linux_physical_cores()
        if cores:
            return cores
    elif sys.platform == "darwin":
        cores = _sysctl_int("hw.perflevel0.physicalcpu") or _sysctl_int("hw.physicalcpu")  # Apple's performance cores
        if cores:
            return cores
    # Windows, and Linux where /proc/cpuinfo names no cores (ARM): psutil asks the system (its
    # topology files, GetLogicalProcessorInformation), bounded by the CPUs this process may use
    logical = usable_cpus()
    try:
        cores = psutil.cpu_count(logical=False)
    except (OSError, RuntimeError):
        cores = None
    return min(cores, logical) if cores else logical


def default_threads(for_window: bool = False) -> int:
    """torch's CPU threads unless chosen: one per physical core; the desktop app keeps one core for
    its window where there are 4 or more."""
    cores = physical_cores()
    return cores - 1 if for_window and cores >= 4 else cores


def _linux_physical_cores() -> int | None:
    try:
        with open("/proc/cpuinfo") as file:
            return count_cores(file.read(), os.sched_getaffinity(0))
    except (OSError, ValueError):
        return None


def count_cores(cpuinfo: str, allowed: set[int]) -> int | None:
    """Unique (physical id, core id) pairs of /proc/cpuinfo among the `allowed` CPUs; None if it
    names no cores (ARM and some virtual machines)."""
    cores, cpu, package = set(), None, "0"
    for line in cpuinfo.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            cpu, package = int(value), "0"
        elif key == "physical id":
            package = value
        elif key == "core id" and cpu in allowed:
            cores.add((package, value))
    return len(cores) or None


def _sysctl(name: str) -> str:
    """A macOS system value, or "" where there is none."""
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _sysctl_int(name: str) -> int | None:
    value = _sysctl(name)
    return int(value) if value.isdigit() else None


def cpu_model() -> str:
    """The CPU's marketing name, as well as the system tells it."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo") as file:
                for line in file:
                    key, _, value = line.partition(":")
                    if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                        return value.strip()
        except OSError:
            pass
    elif sys.platform == "darwin" and _sysctl("machdep.cpu.brand_string"):
        return _sysctl("machdep.cpu.brand_string")
    return platform.processor() or platform.machine() or "unknown"


def linux_cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo; empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as file:
            line = next((line for line in file if line.startswith(("flags", "Features"))), "")
    except OSError:
        return set()
    return set(line.partition(":")[2].split())


CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_summary() -> str:
    """The CPU's model and the features that decide the engine, for logs, doctor and the benchmark."""
    import torch
    flags = [flag for flag in CPU_FEATURES if flag in linux_cpu_flags()]
    return (f"{cpu_model()}, {os.cpu_count()} cores, torch capability {torch.backends.cpu.get_cpu_capability()}, "
            f"flags: {' '.join(flags) or 'none of note'}")
