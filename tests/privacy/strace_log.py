"""Reading an ``strace -f -yy -xx`` log of socket calls: where each one went, and
the name each DNS query asked for."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Any

STRACE_ARGS = [
    "strace",
    "-f",  # the server's threads and child processes too
    "-qq",
    "-yy",  # decode socket fds: "5<UDP:[127.0.0.1:40000->127.0.0.1:53]>"
    "-xx",  # buffers as hex, so DNS queries can be decoded
    "-s",
    "512",
    "--seccomp-bpf",  # stop only on the traced calls: the server runs at near full speed
    "-e",
    "trace=connect,sendto,sendmsg,sendmmsg",
]

CALL = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(connect|sendto|sendmsg|sendmmsg)\((.*)$")
INET = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
INET6 = re.compile(r'sa_family=AF_INET6, sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"')
FD_PEER = re.compile(r"^\d+<(?:UDP|TCP|UDPv6|TCPv6):\[([^\]]*)->([^\]]*)\]>")
BUFFER = re.compile(r'"((?:\\x[0-9a-f]{2})+)"')


@dataclass(frozen=True)
class SocketCall:
    pid: int
    call: str
    host: str
    port: int
    dns_name: str | None = None

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host.split("%", 1)[0]).is_loopback
        except ValueError:
            return False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "loopback": self.loopback}

    def describe(self) -> str:
        what = f" (DNS query for {self.dns_name})" if self.dns_name else ""
        return f"{self.call} to {self.host}:{self.port}{what} [pid {self.pid}]"


def _unescape(text: str) -> str:
    """strace -xx writes strings as \\xNN escapes."""
    return bytes.fromhex(text.replace("\\x", "")).decode() if text.startswith("\\x") else text


def _peer(text: str) -> tuple[str, int] | None:
    """The destination address of a call: its sockaddr argument, else the fd's peer."""
    for pattern in (INET, INET6):
        m = pattern.search(text)
        if m:
            return _unescape(m.group(2)), int(m.group(1))
    m = FD_PEER.match(text)
    if m:
        host, _, port = m.group(2).rpartition(":")
        if port.isdigit():
            return host.strip("[]"), int(port)
    return None


def dns_question(packet: bytes) -> str | None:
    """The first question's name of a DNS query, or None if it is not one."""
    if len(packet) < 17:
        return None
    labels, i = [], 12
    while i < len(packet):
        n = packet[i]
        if n == 0:
            return ".".join(labels) or "."
        if n > 63 or i + 1 + n > len(packet):
            return None
        labels.append(packet[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return None


def parse(log: str) -> list[SocketCall]:
    """Every IPv4/IPv6 destination in the log (Unix, netlink and unaddressed sends skipped)."""
    calls = []
    for line in log.splitlines():
        m = CALL.match(line.strip())
        if not m:
            continue
        pid, call, rest = int(m.group(1)), m.group(2), m.group(3)
        peer = _peer(rest)
        if peer is None:
            continue
        name = None
        if peer[1] == 53 and call != "connect":
            buf = BUFFER.search(rest)
            if buf:
                name = dns_question(bytes.fromhex(buf.group(1).replace("\\x", "")))
        calls.append(SocketCall(pid, call, peer[0], peer[1], name))
    return calls
