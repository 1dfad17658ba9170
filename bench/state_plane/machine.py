"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import msgpack
import pydantic
import zmq


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict[str, str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "load average (1 min) at start": f"{load[0]:.2f}",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "pyzmq / libzmq": f"{zmq.__version__} / {zmq.zmq_version()}",
        "msgpack": ".".join(str(p) for p in msgpack.version),
        "pydantic": pydantic.VERSION,
    }
