"""Memory facts from the kernel (procfs): a process's resident size and its high-water mark, and the
machine's free memory and page cache. A peak is the kernel's own (VmHWM), not a sampled one."""
from __future__ import annotations

from pathlib import Path

from .units import GIB


def process_status(field: str, pid: int | str = "self") -> int:
    """A size field of /proc/<pid>/status (``VmRSS``, ``VmHWM``) in bytes; 0 if it is not there."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak(pid: int | str = "self") -> bool:
    """Set the process's VmHWM back to its resident size now (5 > clear_refs); False where that is refused,
    and the peak then counts from the process's start."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def meminfo() -> dict[str, int]:
    """The machine's memory and page-cache state, in bytes (/proc/meminfo)."""
    wanted = ("MemTotal", "MemFree", "MemAvailable", "Cached", "Dirty", "Writeback")
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in wanted:
            out[name] = int(rest.split()[0]) * 1024
    return out


def describe_memory(info: dict[str, int]) -> str:
    """``meminfo()`` as one log line, in GiB."""
    gb = lambda name: f"{info.get(name, 0) / GIB:.1f}"  # noqa: E731
    return (f"free {gb('MemFree')} GiB, available {gb('MemAvailable')} GiB, page cache {gb('Cached')} GiB "
            f"(dirty {gb('Dirty')}, writeback {gb('Writeback')})")
