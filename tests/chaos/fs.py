"""Real small filesystems for disk-fault tests: a size-limited tmpfs, and a loop-mounted ext4
that the kernel can be made to turn read-only under a running process.

Linux refuses `mount -o remount,ro` while any file on the filesystem is open for writing (the
writer's journal and database always are), so "the disk went read-only under us" is made the
way it happens in production: an ext4 error with `errors=remount-ro`, triggered through
ext4's own test hook `/sys/fs/ext4/<dev>/trigger_fs_error`. Every helper says why it cannot
work here (not root, no loop devices, no ext4 tools) so the test can skip with that reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class FsUnavailable(Exception):
    """This machine cannot make the filesystem (the message says why); the test skips."""


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, check=check)


def _unmount(path: Path) -> None:
    if _run("umount", str(path), check=False).returncode != 0:
        _run("umount", "-l", str(path), check=False)  # lazy: whatever still holds it, it goes


@contextlib.contextmanager
def tmpfs(path: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` mounted at `path` (created, must be empty)."""
    if os.geteuid() != 0:
        raise FsUnavailable("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path), check=False)
    if done.returncode != 0:
        raise FsUnavailable(f"mount -t tmpfs failed: {done.stderr.strip()}")
    try:
        yield path
    finally:
        _unmount(path)


def fill_up(directory: Path, name: str = "ballast") -> Path:
    """Write a file until the filesystem says ENOSPC; returns it (delete it to free the space)."""
    ballast = directory / name
    chunk = b"\xa5" * 65536
    with ballast.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError:
            pass
        # The last partial page or block: write what still fits, byte-chunk by smaller chunk.
        for size in (4096, 512, 64, 1):
            try:
                while True:
                    fh.write(b"\xa5" * size)
            except OSError:
                continue
    return ballast


@dataclass
class Ext4Loop:
    image: Path
    mountpoint: Path
    device: str

    @property
    def sysfs(self) -> Path:
        return Path("/sys/fs/ext4") / Path(self.device).name

    def make_read_only(self) -> None:
        """An ext4 error under errors=remount-ro: from now on every write gets EROFS."""
        (self.sysfs / "trigger_fs_error").write_text("1\n")

    def is_read_only(self) -> bool:
        probe = self.mountpoint / ".probe"
        try:
            probe.write_bytes(b"x")
        except OSError:
            return True
        probe.unlink()
        return False

    def repair(self) -> None:
        """What an operator does: unmount, fsck, mount again (the writer must be stopped)."""
        _run("umount", str(self.mountpoint))
        _run("e2fsck", "-fy", str(self.image), check=False)  # exit 1 = errors corrected
        _run("mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mountpoint))
        self.device = _source(self.mountpoint)


def _source(mountpoint: Path) -> str:
    return _run("findmnt", "-no", "SOURCE", str(mountpoint)).stdout.strip()


@contextlib.contextmanager
def ext4_loop(image: Path, mountpoint: Path, size_bytes: int) -> Iterator[Ext4Loop]:
    if os.geteuid() != 0:
        raise FsUnavailable("a loop-mounted ext4 needs root")
    for tool in ("mkfs.ext4", "e2fsck", "findmnt"):
        if shutil.which(tool) is None:
            raise FsUnavailable(f"{tool} not installed")
    with image.open("wb") as fh:
        fh.truncate(size_bytes)
    made = _run("mkfs.ext4", "-q", "-F", str(image), check=False)
    if made.returncode != 0:
        raise FsUnavailable(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mountpoint.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(mountpoint), check=False)
    if done.returncode != 0:
        raise FsUnavailable(f"loop mount of ext4 failed: {done.stderr.strip()}")
    fs = Ext4Loop(image, mountpoint, _source(mountpoint))
    try:
        if not (fs.sysfs / "trigger_fs_error").exists():
            raise FsUnavailable(f"{fs.sysfs}/trigger_fs_error missing: this kernel cannot fail ext4 on demand")
        yield fs
    finally:
        if _source(mountpoint):
            _unmount(mountpoint)
        image.unlink(missing_ok=True)
