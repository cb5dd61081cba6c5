"""Resident-memory probes for the CPU memory benchmarks, each run in a fresh subprocess."""

from __future__ import annotations

import os
import resource
from pathlib import Path


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_kb() -> int:
    """Resident high-water mark (VmHWM, resettable) or, without /proc, ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def reset_peak() -> bool:
    # Linux >= 4.0: "5" resets the high-water mark to the current RSS, so import and model
    # building transients cannot mask the step's own peak
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child_env() -> dict[str, str]:
    """The environment of a memory subprocess: this package importable, large blocks mmapped."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # large blocks mmapped: a free leaves the RSS
    env.setdefault("OMP_NUM_THREADS", "1")  # memory only: keep the children light
    return env
