"""Count the files a piece of code opens, as the Linux kernel sees it (inotify IN_OPEN).

    with OpenCounter(lake_dir, suffix=".parquet") as c:
        table.partition_stats()
    c.count            # data files opened, whoever opened them (Python, pyarrow, delta-rs)
    c.opened           # their paths

Watches every directory under `root` (inotify is per directory), so it sees opens made by
native code too, where a Python-level hook would not. Linux only.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct

IN_OPEN = 0x00000020
IN_NONBLOCK = 0o4000
_HDR = struct.Struct("iIII")


class OpenCounter:
    """Context manager counting opens of files ending with `suffix` under `root`."""

    def __init__(self, root: str | os.PathLike, suffix: str = ".parquet", skip: tuple[str, ...] = ("_delta_log",)):
        self.root, self.suffix, self.skip = str(root), suffix, skip
        self.opened: list[str] = []
        self._fd = -1
        self._wd: dict[int, str] = {}
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    @property
    def count(self) -> int:
        return len(self.opened)

    def __enter__(self) -> "OpenCounter":
        self._fd = self._libc.inotify_init1(IN_NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        for d, dirs, _ in os.walk(self.root):
            dirs[:] = [x for x in dirs if x not in self.skip]
            wd = self._libc.inotify_add_watch(self._fd, d.encode(), IN_OPEN)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch failed on {d}")
            self._wd[wd] = d
        return self

    def _drain(self) -> None:
        while True:
            try:
                buf = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            pos = 0
            while pos < len(buf):
                wd, mask, _, n = _HDR.unpack_from(buf, pos)
                name = buf[pos + _HDR.size: pos + _HDR.size + n].rstrip(b"\0").decode()
                pos += _HDR.size + n
                if mask & IN_OPEN and name.endswith(self.suffix):
                    self.opened.append(os.path.join(self._wd.get(wd, "?"), name))

    def __exit__(self, *exc) -> None:
        self._drain()
        os.close(self._fd)
        self._fd = -1
