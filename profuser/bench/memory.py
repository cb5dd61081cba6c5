"""Resident-memory probes for the CPU memory benchmarks, each run in a fresh subprocess."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
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


def child_peaks(module: str, runs: dict[str, list[str]]) -> dict[str, int]:
    """Peak bytes per name: ``<module>._cpu_child(*args)`` run in a fresh process for each
    name, one after the other; each child prints ``{"peak_bytes": ...}`` as its last line."""
    code = f"import sys; from {module} import _cpu_child; _cpu_child(*sys.argv[1:])"
    out: dict[str, int] = {}
    for name, args in runs.items():
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory subprocess for {name!r} failed:\n{proc.stderr[-2000:]}")
        out[name] = int(json.loads(proc.stdout.strip().splitlines()[-1])["peak_bytes"])
    return out
