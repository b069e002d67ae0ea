"""Every listener of the test cluster binds loopback: nothing Ray starts here is reachable from the network."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
_RAY_MARKERS = ("raylet", "gcs_server", "ray::", "site-packages/ray/")


def _ray_socket_inodes() -> set[str]:
    inodes: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            is_ray = int(proc.name) == os.getpid() or any(m in cmd for m in _RAY_MARKERS)
            if not is_ray:
                continue
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:  # a process that ended meanwhile, or one that is not ours
            continue
    return inodes


def _address(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    addr = ipaddress.IPv6Address(words)
    return addr.ipv4_mapped or addr


def _listeners(inodes: set[str]) -> list[tuple[str, int]]:
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                host, port = local.split(":")
                out.append((str(_address(host)), int(port, 16)))
    return out


def test_every_ray_listener_is_on_loopback(ray_cluster):
    @ray_cluster.remote
    def where() -> str:
        return ray_cluster.util.get_node_ip_address()

    assert ray_cluster.get(where.remote()) == "127.0.0.1"
    assert {n["NodeManagerAddress"] for n in ray_cluster.nodes()} == {"127.0.0.1"}
    listeners = _listeners(_ray_socket_inodes())
    assert listeners, "found no listening socket of the Ray cluster to check"
    exposed = [(h, p) for h, p in listeners if not ipaddress.ip_address(h).is_loopback]
    assert exposed == []
