"""Two "hosts" on one machine: Linux network namespaces the test creates and removes itself.

    root namespace (the test, PostgreSQL on 127.0.0.1, a relay to it)
        | db link: veth, ROOT_DB <-> HUB_DB
    namespace "hub" (state writer, diagnostics, dashboard)
        | the link: veth, HUB_LINK <-> ACT_LINK   <- cut, flapped
    namespace "act" (exchange gateway, executor, router, exit scanner, sync, load, watcher)

Addresses are /30s in 10.213.0.0/16 picked from the test's pid, so two runs on one machine do
not collide. Processes in a namespace are started with `ip netns exec NS ...`, which execs the
command (the pid the test holds is the program's own). Deleting a namespace destroys the veth
ends inside it, and with them their peers: nothing of the network outlives the test.

Faults on the link:
- `partition()`: a blackhole qdisc on both ends, so every packet vanishes silently in both
  directions: what a dead switch or a cut cable between two hosts looks like to TCP (no RST,
  no error: connections stay open and time out).
- `link_down()`: the actor host's end administratively down: its routes disappear and its
  connects fail at once with "network unreachable"; the hub's end loses carrier.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


def _run(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def problem() -> str:
    """Why this machine cannot run the multi-host test ("" if it can): it needs root, ip and tc."""
    if os.geteuid() != 0:
        return f"needs root to create network namespaces (running as uid {os.geteuid()})"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (iproute2)"
    probe = f"v7probe{os.getpid()}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    try:
        # The partition is a blackhole qdisc; some kernels are built without it.
        veth = _run("ip", "netns", "exec", probe, "ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1",
                    check=False)
        if veth.returncode != 0:
            return f"cannot create a veth pair: {veth.stderr.strip()}"
        tc = _run("tc", "qdisc", "add", "dev", "p0", "root", "blackhole", ns=probe, check=False)
        if tc.returncode != 0:
            return f"tc blackhole qdisc unavailable: {tc.stderr.strip()}"
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return ""


@dataclass(frozen=True)
class TwoHosts:
    hub_ns: str
    act_ns: str
    hub_addr: str  # the hub's address on the link (its endpoints bind here)
    act_addr: str
    db_addr: str  # the root namespace's end of the db link (the PostgreSQL relay listens here)
    hub_link: str  # interface names
    act_link: str

    def prefix(self, ns: str) -> list[str]:
        """Command prefix that runs a program inside namespace `ns`."""
        return ["ip", "netns", "exec", ns]

    def partition(self) -> None:
        _run("tc", "qdisc", "add", "dev", self.hub_link, "root", "blackhole", ns=self.hub_ns)
        _run("tc", "qdisc", "add", "dev", self.act_link, "root", "blackhole", ns=self.act_ns)

    def heal(self) -> None:
        _run("tc", "qdisc", "del", "dev", self.hub_link, "root", ns=self.hub_ns)
        _run("tc", "qdisc", "del", "dev", self.act_link, "root", ns=self.act_ns)

    def link_down(self) -> None:
        _run("ip", "link", "set", "dev", self.act_link, "down", ns=self.act_ns)

    def link_up(self) -> None:
        _run("ip", "link", "set", "dev", self.act_link, "up", ns=self.act_ns)


@contextlib.contextmanager
def two_hosts() -> Iterator[TwoHosts]:
    """Create the namespaces and links; remove them whatever happens."""
    pid = os.getpid()
    tag = f"{pid % 100000}"
    # 10.213.X.Y/30 pairs: X and the block within it from the pid (16 384 blocks of 4 addresses).
    block = pid % 16384
    third, fourth = block // 64, (block % 64) * 4
    host = TwoHosts(
        hub_ns=f"v7mh{tag}hub", act_ns=f"v7mh{tag}act",
        hub_addr=f"10.213.{third}.{fourth + 1}", act_addr=f"10.213.{third}.{fourth + 2}",
        db_addr=f"10.214.{third}.{fourth + 1}",
        hub_link=f"v7l{tag}h", act_link=f"v7l{tag}a",
    )
    db_root, db_hub = f"v7d{tag}r", f"v7d{tag}h"
    try:
        for ns in (host.hub_ns, host.act_ns):
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "set", "lo", "up", ns=ns)
        # The link between the two hosts.
        _run("ip", "link", "add", host.hub_link, "type", "veth", "peer", "name", host.act_link)
        _run("ip", "link", "set", host.hub_link, "netns", host.hub_ns)
        _run("ip", "link", "set", host.act_link, "netns", host.act_ns)
        _run("ip", "addr", "add", f"{host.hub_addr}/30", "dev", host.hub_link, ns=host.hub_ns)
        _run("ip", "addr", "add", f"{host.act_addr}/30", "dev", host.act_link, ns=host.act_ns)
        _run("ip", "link", "set", host.hub_link, "up", ns=host.hub_ns)
        _run("ip", "link", "set", host.act_link, "up", ns=host.act_ns)
        # The hub host's way to the database server (in the root namespace).
        _run("ip", "link", "add", db_root, "type", "veth", "peer", "name", db_hub)
        _run("ip", "link", "set", db_hub, "netns", host.hub_ns)
        _run("ip", "addr", "add", f"{host.db_addr}/30", "dev", db_root)
        _run("ip", "addr", "add", f"10.214.{third}.{fourth + 2}/30", "dev", db_hub, ns=host.hub_ns)
        _run("ip", "link", "set", db_root, "up")
        _run("ip", "link", "set", db_hub, "up", ns=host.hub_ns)
        yield host
    finally:
        for ns in (host.hub_ns, host.act_ns):
            _run("ip", "netns", "del", ns, check=False)
        _run("ip", "link", "del", db_root, check=False)  # gone with its peer already, normally
