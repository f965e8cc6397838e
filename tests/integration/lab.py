"""A network-namespace lab for end-to-end DHCP tests with real clients.

Layout (``<id>`` is random per lab, so parallel runs never collide)::

    host namespace (the test process, lab.etcd())
      eh<id>  198.19.N.1/30
        |  veth "uplink"
      up0     198.19.N.2/30      <- the daemon's admin port is reached here
    server namespace ehs-<id>  (the DHCP server runs here)
      br0     198.18.0.1/24      <- bridge, STP off, forward delay 0
       |-- p0 ==veth== eth0  client namespace ehc-<id>-0
       |-- p1 ==veth== eth0  client namespace ehc-<id>-1 ...

All addresses are in 198.18.0.0/15 (RFC 2544 benchmarking space): nothing in the lab can
reach or be reached from a real network. IPv6 is off in every lab namespace to keep the
wire quiet. Every subprocess has a timeout and every process the lab starts is killed by
PID at close(), which also deletes the namespaces, the host veth and /etc/netns entries.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from etcdhcp.embedded_etcd import EtcdProcess

LAB_NETWORK = ipaddress.ip_network("198.18.0.0/15")
CLIENT_SUBNET = ipaddress.ip_network("198.18.0.0/24")
SERVER_IP = "198.18.0.1"
BRIDGE = "br0"
UPLINK_SERVER_IF = "up0"
CLIENT_IF = "eth0"
# Leftovers of labs whose owner died are found through these records (see reap_stale).
OWNER_DIR = Path("/run/etcdhcp-lab")
_NS_RE = re.compile(r"^eh[sc]-([0-9a-f]{8})(?:-\d+)?$")

_UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc event script for the etcdhcp lab: apply the lease with ip(8) and record the
# variables udhcpc passes (ip, serverid, lease, subnet, router, ...) for the test.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ;;
  bound|renew)
    if ! ip -4 -o addr show dev "$interface" | grep -q " $ip/"; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/${mask:-$subnet}" dev "$interface"
    fi
    ;;
esac
if [ -n "$ETCDHCP_LAB_ENV" ]; then
  { echo "event=$1"; env | grep -E '^[a-z][a-z0-9_]*='; } > "$ETCDHCP_LAB_ENV"
fi
exit 0
"""

# dhclient's script for `dhclient(record=True)`: appends each event's reason and new_*
# variables to EVENTS (dhclient gives its script no environment of ours), then does what
# Debian's script does. dhclient rewrites its lease file at most every 15 s, so a renewal
# is seen here, not always there.
_DHCLIENT_SCRIPT = """#!/bin/sh
{{ echo "reason=$reason"; env | grep -E '^new_[a-z0-9_]*=' | sort; echo; }} >> {events}
exec /sbin/dhclient-script "$@"
"""

# Debian's /etc/dhcp/dhclient.conf, plus a timeout so `dhclient -1` gives up on its own.
_DHCLIENT_CONF = """# etcdhcp lab: Debian's defaults plus a timeout
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
send host-name = gethostname();
request subnet-mask, broadcast-address, time-offset, routers,
        domain-name, domain-name-servers, domain-search, host-name,
        interface-mtu, rfc3442-classless-static-routes, ntp-servers;
timeout {timeout};
"""


class LabError(RuntimeError):
    """A lab command failed or overran its time bound."""


def _run(
    argv: Sequence[str], timeout: float = 30.0, check: bool = True, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run a host-side command with a time bound; LabError with stderr on failure."""
    try:
        out = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kw
        )
    except subprocess.TimeoutExpired as e:
        raise LabError(f"{shlex.join(argv)} did not finish within {timeout:g}s") from e
    if check and out.returncode != 0:
        raise LabError(f"{shlex.join(argv)} failed ({out.returncode}): {out.stderr.strip()}")
    return out


def _ip(*args: str, ns: str | None = None) -> subprocess.CompletedProcess[str]:
    """``ip [-n NS] ARGS...`` with a time bound; LabError on failure."""
    return _run(["ip", *(["-n", ns] if ns else []), *args])


def _check_lab_address(address: str) -> ipaddress.IPv4Interface:
    """Refuse any address outside 198.18.0.0/15: the lab must never address real hosts."""
    iface = ipaddress.IPv4Interface(address)
    if iface.ip not in LAB_NETWORK:
        raise ValueError(f"{address} is outside the lab range {LAB_NETWORK}")
    return iface


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago, for a server to listen on.

    Taken below the kernel's ephemeral range, where connections get their local ports:
    one probed in that range (bind to port 0) could go to gRPC's or etcdctl's next
    connection before the etcd it was meant for binds it. Starting from a random port
    keeps concurrent test runs apart.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    first = max(1024, low - 12000)
    start = random.randrange(first, low)
    for port in [*range(start, low), *range(first, start)]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {host} between {first} and {low}")


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a live owner from a recycled PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _kill_pids(pids: Sequence[int], timeout: float = 3.0) -> None:
    """SIGTERM the given PIDs, SIGKILL whatever is still there after ``timeout``."""
    alive = [p for p in pids if p > 1 and p != os.getpid()]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 1):
        alive = [p for p in alive if _exists(p)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _exists(pid: int) -> bool:
    """True while ``pid`` is a live (non-zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _comm(pid: int) -> str:
    """The process name of ``pid`` ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _netns_pids(ns: str) -> list[int]:
    """PIDs of every process inside namespace ``ns`` (``ip netns pids``)."""
    out = _run(["ip", "netns", "pids", ns], timeout=10, check=False)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def _set_parent_death_signal() -> None:
    """SIGTERM lab processes if the test process dies without running close()."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class Client:
    """A DHCP client host: its own namespace with ``eth0`` bridged to the server's br0."""

    def __init__(self, lab: Lab, index: int, name: str, ns: str, port: str) -> None:
        self.lab = lab
        self.index = index
        self.name = name
        self.ns = ns
        self.port = port  # the bridge port (in the server namespace unless attached)
        self.dir = lab.workdir / f"client-{index}-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.last_output = ""
        self.udhcpc_env: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Client({self.name!r}, ns={self.ns!r})"

    # -- state ------------------------------------------------------------------

    @property
    def mac(self) -> str:
        """eth0's MAC address, lower case."""
        out = self.lab.run(self.ns, ["ip", "-o", "link", "show", "dev", CLIENT_IF], check=True)
        match = re.search(r"link/ether ([0-9a-f:]{17})", out.stdout)
        if not match:
            raise LabError(f"no MAC on {self.ns}/{CLIENT_IF}: {out.stdout!r}")
        return match.group(1)

    def addresses(self) -> list[str]:
        """Every IPv4 address on eth0 with its prefix length ("198.18.0.7/24")."""
        out = self.lab.run(
            self.ns, ["ip", "-4", "-o", "addr", "show", "dev", CLIENT_IF], check=True
        )
        return re.findall(r"\binet (\d+\.\d+\.\d+\.\d+/\d+)", out.stdout)

    def address(self) -> str | None:
        """eth0's current IPv4 address (no prefix), or None."""
        found = self.addresses()
        return found[0].split("/")[0] if found else None

    def flush(self) -> None:
        """Remove every IPv4 address from eth0 (between clients on the same host)."""
        self.lab.run(self.ns, ["ip", "-4", "addr", "flush", "dev", CLIENT_IF], check=True)

    def run(self, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        """lab.run() in this client's namespace."""
        return self.lab.run(self.ns, argv, **kw)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """lab.popen() in this client's namespace."""
        return self.lab.popen(self.ns, argv, **kw)

    def ping(self, address: str, count: int = 1, timeout: float = 2.0) -> bool:
        """lab.ping() from this client."""
        return self.lab.ping(self.ns, address, count=count, timeout=timeout)

    # -- DHCP clients -----------------------------------------------------------

    def _tool(
        self,
        tool: str,
        argv: Sequence[str],
        bound: float,
        env: Mapping[str, str] | None = None,
        mounts: Mapping[str, str] | None = None,
    ) -> int:
        """Run a DHCP client to completion, output to a log file; returns its status.

        Output goes to a file, not a pipe: dhclient forks a daemon that would hold a pipe
        open. ``bound`` is a safety net above the tool's own timeout; overrunning it is a
        failure (LabError), not "no lease".
        """
        log_path = self.dir / f"{tool}.log"
        with open(log_path, "ab") as log:
            start = log.tell()
            log.write(f"### {shlex.join(argv)}\n".encode())
            log.flush()
            proc = self.lab.popen(
                self.ns, argv, stdout=log, stderr=subprocess.STDOUT, env=env, mounts=mounts
            )
        try:
            code = proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            _kill_pids([proc.pid], timeout=2.0)
            proc.wait(timeout=10)
            self.last_output = _read_from(log_path, start)
            raise LabError(
                f"{tool} in {self.ns} overran its {bound:g}s bound:\n{self.last_output}"
            ) from None
        self.last_output = _read_from(log_path, start)
        return code

    def _settled_address(self, wait: float = 2.0) -> str | None:
        """The address right after a client reported success (scripts may lag a bit)."""
        deadline = time.monotonic() + wait
        for _ in range(int(wait / 0.1) + 1):
            addr = self.address()
            if addr or time.monotonic() > deadline:
                return addr
            time.sleep(0.1)
        return None

    def _dhclient_files(self) -> list[str]:
        return ["-lf", str(self.dir / "dhclient.leases"), "-pf", str(self.dir / "dhclient.pid")]

    def dhclient(
        self,
        timeout: float = 20.0,
        fresh: bool = False,
        record: bool = False,
        conf_extra: str = "",
        mounts: Mapping[str, str] | None = None,
    ) -> str | None:
        """ISC dhclient once (``dhclient -1 -v``); the bound address or None.

        On success dhclient forks a daemon that keeps renewing: stop it with
        dhclient_release() or dhclient_stop(), or leave it to lab.close(). ``timeout``
        goes into its config file, so dhclient itself gives up. ``fresh`` forgets earlier
        leases. Measured (4.4.3): with an unexpired lease in its lease file and no server
        answering, dhclient spends ~10 s on INIT-REBOOT REQUESTs, then ``timeout`` on
        DISCOVERs, then "Trying recorded lease", binds the stale address and exits 0
        (~22 s for timeout=3): pass fresh=True to test "no server, no lease". ``record``
        keeps what dhclient tells its script at each event for dhclient_events().
        ``conf_extra`` is appended to its dhclient.conf (``option NAME code N = TYPE;``,
        ``also request NAME;``); ``mounts`` as for lab.run(): its private /run keeps
        Debian's timesyncd exit hook from handing received ntp-servers to the host.
        """
        conf = self.dir / "dhclient.conf"
        conf.write_text(_DHCLIENT_CONF.format(timeout=max(1, round(timeout))) + conf_extra)
        if fresh:
            (self.dir / "dhclient.leases").unlink(missing_ok=True)
        script: list[str] = []
        if record:
            path = self.dir / "dhclient-script"
            path.write_text(_DHCLIENT_SCRIPT.format(events=shlex.quote(str(self._events))))
            path.chmod(0o755)
            script = ["-sf", str(path)]
        argv = ["dhclient", "-1", "-v", "-cf", str(conf), *script, *self._dhclient_files()]
        code = self._tool(  # bound: + INIT-REBOOT
            "dhclient", [*argv, CLIENT_IF], bound=timeout + 30, mounts=mounts
        )
        return self._settled_address() if code == 0 else None

    @property
    def _events(self) -> Path:
        return self.dir / "dhclient.events"

    def dhclient_events(self) -> list[dict[str, str]]:
        """What dhclient(record=True) passed its script, event by event ("reason",
        "new_ip_address", "new_routers", ...)."""
        text = self._events.read_text() if self._events.exists() else ""
        return [_parse_env(block.splitlines()) for block in text.split("\n\n") if block.strip()]

    def _dhclient_ctl(self, flag: str, timeout: float) -> int:
        conf = self.dir / "dhclient.conf"
        if not conf.exists():
            conf.write_text(_DHCLIENT_CONF.format(timeout=20))
        argv = ["dhclient", flag, "-v", "-cf", str(conf), *self._dhclient_files(), CLIENT_IF]
        return self._tool("dhclient", argv, bound=timeout)

    def dhclient_release(self, timeout: float = 20.0) -> int:
        """``dhclient -r``: send DHCPRELEASE, stop the running dhclient, drop the address."""
        return self._dhclient_ctl("-r", timeout)

    def dhclient_stop(self, timeout: float = 20.0) -> int:
        """``dhclient -x``: stop the running dhclient without releasing the lease."""
        return self._dhclient_ctl("-x", timeout)

    def udhcpc(
        self, tries: int = 3, interval: int = 2, extra_args: Sequence[str] = ()
    ) -> str | None:
        """Busybox udhcpc once (``-q -n -f -t TRIES -T INTERVAL``); the address or None.

        Its event script applies the address with ip(8) and records udhcpc's variables
        in ``self.udhcpc_env`` (ip, serverid, lease, subnet, router, ...).
        """
        env_file = self.dir / "udhcpc.env"
        env_file.unlink(missing_ok=True)
        argv = [
            "udhcpc",
            "-i",
            CLIENT_IF,
            "-q",
            "-n",
            "-f",
            "-t",
            str(tries),
            "-T",
            str(max(1, int(interval))),
            "-s",
            str(self.lab.udhcpc_script),
            *extra_args,
        ]
        env = {**os.environ, "ETCDHCP_LAB_ENV": str(env_file)}
        code = self._tool("udhcpc", argv, bound=tries * interval + 15, env=env)
        self.udhcpc_env = _read_env(env_file)
        return self._settled_address() if code == 0 else None

    def dhcpcd(
        self,
        timeout: float = 20.0,
        noarp: bool = False,
        fresh: bool = False,
        extra_args: Sequence[str] = (),
    ) -> str | None:
        """dhcpcd once (``dhcpcd -1 -4 -L -t TIMEOUT``); the address or None.

        No ``-B``: measured with dhcpcd 9.4.1, ``-B`` makes it ignore ``-t`` and retry
        forever, while ``-1`` alone already keeps it in the foreground and exits once
        bound. ``-t`` includes its ~5 s ARP probe (``noarp`` adds ``-A`` to skip it).
        dhcpcd has no option to move its state, so it runs in a private mount namespace
        with this client's own /var/lib/dhcpcd (DUID, ``eth0.lease``, which every client
        would otherwise share) and a fresh tmpfs on /run. ``fresh`` forgets its lease;
        otherwise it starts with an INIT-REBOOT REQUEST for the last one.
        """
        state = self.dir / "dhcpcd-lib"
        if fresh and state.exists():
            for lease in state.glob("*.lease*"):
                lease.unlink()
        state.mkdir(exist_ok=True)
        argv = [
            "dhcpcd",
            "-1",
            "-4",
            "-L",
            "-t",
            str(max(1, round(timeout))),
            *(["-A"] if noarp else []),
            *extra_args,
            CLIENT_IF,
        ]
        code = self._tool(
            "dhcpcd", argv, bound=timeout + 15, mounts={"/var/lib/dhcpcd": str(state)}
        )
        self._wait_gone("dhcpcd")
        return self._settled_address() if code == 0 else None

    def _wait_gone(self, comm: str, wait: float = 5.0) -> None:
        """Wait (bounded) until no process named ``comm`` is left in this namespace.

        dhcpcd's privilege-separation helpers (proxy, BPF reader) exit a moment after
        the main process; later calls and close() should not race them.
        """
        deadline = time.monotonic() + wait
        for _ in range(int(wait / 0.05) + 1):
            left = [p for p in _netns_pids(self.ns) if _comm(p) == comm]
            if not left or time.monotonic() > deadline:
                return
            time.sleep(0.05)


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def _read_env(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    return _parse_env(lines)


def _parse_env(lines: Sequence[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines if "=" in line)


class Lab:
    """Server namespace + bridge + uplink to the host, and client namespaces on demand.

    Creating a Lab builds the server side at once; use it as a context manager (or call
    close()) so everything is torn down even when a test fails.
    """

    def __init__(self, workdir: str | os.PathLike[str] | None = None) -> None:
        if os.geteuid() != 0:
            raise LabError("the namespace lab needs root (ip netns, veth, bridges)")
        self.id = uuid.uuid4().hex[:8]
        self.server_ns = f"ehs-{self.id}"
        self.host_if = f"eh{self.id}"
        self.bridge = BRIDGE
        self.server_ip = SERVER_IP
        self.subnet = str(CLIENT_SUBNET)
        self._own_workdir = workdir is None
        base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="etcdhcp-lab-"))
        self.workdir = base / f"lab-{self.id}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.clients: list[Client] = []
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._etcds: list[EtcdProcess] = []
        self._lock: socket.socket | None = None
        self._closed = False
        self.uplink_n = -1
        self.uplink_host_ip = ""
        self.uplink_server_ip = ""
        try:
            self._write_owner()
            self._build()
        except BaseException:
            self.close()
            raise

    # -- building ---------------------------------------------------------------

    def _write_owner(self) -> None:
        OWNER_DIR.mkdir(parents=True, exist_ok=True)
        (OWNER_DIR / self.id).write_text(f"{os.getpid()} {_proc_start_time(os.getpid())}\n")

    def _add_namespace(self, ns: str) -> None:
        """Create ``ns`` with lo up and IPv6 off (set before any interface exists)."""
        _ip("netns", "add", ns)
        self._namespaces.append(ns)
        if Path("/proc/sys/net/ipv6").exists():
            sysctls = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
            _ip("netns", "exec", ns, "sysctl", "-q", "-w", *sysctls)
        _ip("link", "set", "lo", "up", ns=ns)

    def _build(self) -> None:
        ns = self.server_ns
        self._add_namespace(ns)
        _ip("link", "add", BRIDGE, "type", "bridge", "forward_delay", "0", "stp_state", "0", ns=ns)
        _ip("addr", "add", f"{SERVER_IP}/{CLIENT_SUBNET.prefixlen}", "dev", BRIDGE, ns=ns)
        _ip("link", "set", BRIDGE, "up", ns=ns)
        self._build_uplink()
        self.udhcpc_script = self.workdir / "udhcpc.script"
        self.udhcpc_script.write_text(_UDHCPC_SCRIPT)
        self.udhcpc_script.chmod(0o755)

    def _host_networks(self) -> list[ipaddress.IPv4Network]:
        """Every IPv4 network the host namespace has an address or a route in."""
        nets: list[ipaddress.IPv4Network] = []
        addrs = _run(["ip", "-4", "-o", "addr", "show"], timeout=10).stdout
        for cidr in re.findall(r"\binet (\d+\.\d+\.\d+\.\d+/\d+)", addrs):
            nets.append(ipaddress.IPv4Interface(cidr).network)
        routes = _run(["ip", "-4", "route", "show", "table", "all"], timeout=10).stdout
        for line in routes.splitlines():
            words = line.split()
            if words and words[0] in ("local", "broadcast", "unicast", "multicast", "anycast"):
                words = words[1:]
            if not words or words[0] == "default":
                continue
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(words[0], strict=False))
        return nets

    def _build_uplink(self) -> None:
        """Pick a free 198.19.N.0/30 and connect the host to the server namespace."""
        used = self._host_networks()
        candidates = list(range(256))
        random.shuffle(candidates)
        for n in candidates:
            net = ipaddress.IPv4Network(f"198.19.{n}.0/30")
            if any(net.overlaps(u) for u in used):
                continue
            # Abstract sockets are per network namespace: every lab's owner lives in the
            # host namespace, so this name is a host-wide lock, freed when we exit.
            lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                lock.bind(f"\0etcdhcp-lab-uplink-{n}")
            except OSError:
                lock.close()
                continue
            self._lock, self.uplink_n = lock, n
            break
        else:
            raise LabError("no free 198.19.N.0/30 for the lab uplink on this host")
        self.uplink_host_ip = f"198.19.{self.uplink_n}.1"
        self.uplink_server_ip = f"198.19.{self.uplink_n}.2"
        host_if, ns = self.host_if, self.server_ns
        _ip("link", "add", host_if, "type", "veth", "peer", "name", UPLINK_SERVER_IF, "netns", ns)
        with contextlib.suppress(OSError):  # no IPv6 chatter from the host end either
            Path(f"/proc/sys/net/ipv6/conf/{host_if}/disable_ipv6").write_text("1")
        _ip("addr", "add", f"{self.uplink_host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("addr", "add", f"{self.uplink_server_ip}/30", "dev", UPLINK_SERVER_IF, ns=ns)
        _ip("link", "set", UPLINK_SERVER_IF, "up", ns=ns)

    def add_client(
        self,
        name: str | None = None,
        mac: str | None = None,
        address: str | None = None,
        attach: tuple[str, str] | None = None,
    ) -> Client:
        """A new client namespace whose eth0 is bridged to br0.

        ``mac`` sets eth0's MAC (else the kernel picks a random one); ``address`` (e.g.
        "198.18.0.2/24", must be in 198.18.0.0/15) gives it a static address, as a relay
        such as perfdhcp needs. ``attach`` (namespace, bridge) plugs eth0 into another
        lab namespace's bridge instead, e.g. a client LAN behind a router (relay.py).
        """
        self._check_open()
        k = len(self.clients)
        name = name or f"c{k}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}", name):
            raise ValueError(f"client name {name!r} must be a valid hostname label")
        iface = _check_lab_address(address) if address else None
        ns, port = f"ehc-{self.id}-{k}", f"p{k}"
        self._add_namespace(ns)
        etc = Path("/etc/netns") / ns  # client scripts rewrite resolv.conf: give them one
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"# etcdhcp lab client {name} ({ns})\n")
        mac_args = ["address", mac] if mac else []
        switch_ns, bridge = attach or (self.server_ns, BRIDGE)
        peer = ["peer", "name", port, "netns", switch_ns]
        _ip("link", "add", CLIENT_IF, *mac_args, "type", "veth", *peer, ns=ns)
        _ip("link", "set", port, "master", bridge, "up", ns=switch_ns)
        if iface:
            _ip("addr", "add", str(iface), "dev", CLIENT_IF, ns=ns)
        _ip("link", "set", CLIENT_IF, "up", ns=ns)
        client = Client(self, k, name, ns, port)
        self.clients.append(client)
        return client

    def etcd(self, timeout: float = 20.0, **kw: Any) -> EtcdProcess:
        """Start an etcd in the host namespace on ``http://198.19.N.1:<port>``.

        The daemon in the server namespace reaches it over the uplink; the lab stops it
        at close(). Keyword arguments go to EtcdProcess (name, extra_args, ...).
        """
        self._check_open()
        k = len(self._etcds)
        host = self.uplink_host_ip
        last: Exception | None = None
        for _attempt in range(3):  # a probed free port can be taken before etcd binds it
            etcd = EtcdProcess(
                data_dir=str(self.workdir / f"etcd-{k}-{_attempt}"),
                client_urls=[f"http://{host}:{free_port(host)}"],
                peer_url=f"http://127.0.0.1:{free_port()}",
                **kw,
            )
            self._etcds.append(etcd)
            try:
                return etcd.start(timeout=timeout)
            except Exception as e:
                last = e
        raise LabError(f"could not start the lab etcd: {last}")

    def udhcpd(
        self,
        start: str = "198.18.0.100",
        end: str = "198.18.0.199",
        lease: int = 600,
        timeout: float = 5.0,
    ) -> subprocess.Popen[Any]:
        """Busybox udhcpd on br0 as a reference DHCP server; close() stops it.

        Lets a test tell a lab or client problem from an etcdhcp bug: what works with
        udhcpd must work with etcdhcp. It answers from 198.18.0.1.
        """
        self._check_open()
        for a in (start, end):
            _check_lab_address(a)
        k = sum(1 for p in self.workdir.glob("udhcpd-*.conf"))
        conf = self.workdir / f"udhcpd-{k}.conf"
        leases = self.workdir / f"udhcpd-{k}.leases"
        leases.touch()
        conf.write_text(
            f"start {start}\nend {end}\ninterface {BRIDGE}\nlease_file {leases}\n"
            f"pidfile {self.workdir / f'udhcpd-{k}.pid'}\n"
            f"option subnet {CLIENT_SUBNET.netmask}\noption lease {lease}\n"
        )
        log_path = self.workdir / f"udhcpd-{k}.log"
        with open(log_path, "wb") as log:
            proc = self.popen(
                self.server_ns,
                ["busybox", "udhcpd", "-f", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.05) + 1):
            if "started" in log_path.read_text(errors="replace"):
                return proc
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        raise LabError(f"udhcpd did not start: {log_path.read_text(errors='replace')}")

    # -- running things ---------------------------------------------------------

    def _wrap(
        self, ns: str | None, argv: Sequence[str], mounts: Mapping[str, str] | None = None
    ) -> list[str]:
        """The command line that runs ``argv`` in ``ns`` (None: the host namespace).

        Client namespaces also get their own UTS namespace with the client's name as
        hostname (dhclient sends it; client scripts may set it), and ``mounts`` are
        bind-mounted over paths in a private mount namespace (with a tmpfs on /run).
        """
        argv = [str(a) for a in argv]
        if ns is None:
            return argv
        client = next((c for c in self.clients if c.ns == ns), None)
        if client is None and not mounts:
            return ["ip", "netns", "exec", ns, *argv]
        steps = ["set -e"]
        unshare = ["unshare"]
        if client is not None:
            unshare.append("--uts")
            steps.append(f"hostname {shlex.quote(client.name)}")
        if mounts:
            unshare.append("--mount")
            steps.append("mount -t tmpfs etcdhcp-lab /run")
            for target, source in mounts.items():
                steps.append(f"mount --bind {shlex.quote(source)} {shlex.quote(target)}")
        steps.append('exec "$@"')
        script = "; ".join(steps)
        return ["ip", "netns", "exec", ns, *unshare, "sh", "-c", script, "lab-sh", *argv]

    def run(
        self,
        ns: str | None,
        argv: Sequence[str],
        timeout: float = 30.0,
        check: bool = False,
        **kw: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in namespace ``ns`` to completion (bounded by ``timeout``).

        Output is captured as text unless stdout/stderr are given. Raises LabError when
        ``check`` is set and it fails, or when it overruns ``timeout`` (it is killed).
        """
        self._check_open()
        cmd = self._wrap(ns, argv, kw.pop("mounts", None))
        if "stdout" not in kw and "stderr" not in kw:
            kw["capture_output"] = True
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        try:
            out = subprocess.run(cmd, timeout=timeout, check=False, **kw)
        except subprocess.TimeoutExpired as e:
            raise LabError(f"{shlex.join(cmd)} did not finish within {timeout:g}s") from e
        if check and out.returncode != 0:
            raise LabError(f"{shlex.join(cmd)} failed ({out.returncode}): {out.stderr}")
        return out

    def popen(self, ns: str | None, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in namespace ``ns`` in the background; close() kills it.

        The PID is the program's own (``ip netns exec`` and the wrappers exec into it),
        so ``send_signal`` reaches it. It also gets SIGTERM if the test process dies.
        """
        self._check_open()
        cmd = self._wrap(ns, argv, kw.pop("mounts", None))
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        kw.setdefault("preexec_fn", _set_parent_death_signal)
        proc: subprocess.Popen[Any] = subprocess.Popen(cmd, **kw)
        self._procs.append(proc)
        return proc

    def ping(self, ns: str | None, address: str, count: int = 1, timeout: float = 2.0) -> bool:
        """ICMP echo from ``ns`` (None: the host) to ``address``; True if answered.

        busybox ping: busybox comes with udhcpc, while iputils-ping may be absent.
        """
        wait = max(1, round(timeout))
        argv = ["busybox", "ping", "-c", str(count), "-W", str(wait), address]
        out = self.run(ns, argv, timeout=wait + count + 10)
        return out.returncode == 0

    # -- introspection ----------------------------------------------------------

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this lab created (server first)."""
        return list(self._namespaces)

    def pids(self) -> list[int]:
        """PIDs of every process currently inside the lab's namespaces."""
        return [p for ns in self._namespaces for p in _netns_pids(ns)]

    def _check_open(self) -> None:
        if self._closed:
            raise LabError(f"lab {self.id} is closed")

    # -- teardown ---------------------------------------------------------------

    def close(self) -> None:
        """Kill every lab process by PID, delete namespaces, veth, files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []

        def attempt(what: str, fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except Exception as e:
                errors.append(f"{what}: {e}")

        # Started by us: by PID; then anything else inside our namespaces (forked
        # dhclient daemons, a client script), also by PID.
        attempt("kill lab processes", _kill_pids, [p.pid for p in self._procs if p.poll() is None])
        for proc in self._procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        for ns in reversed(self._namespaces):
            attempt(f"kill processes in {ns}", lambda n: _kill_pids(_netns_pids(n)), ns)
        for etcd in self._etcds:
            attempt(f"stop {etcd!r}", etcd.stop)
        for ns in reversed(self._namespaces):
            if Path(f"/run/netns/{ns}").exists():  # reap_stale() may have beaten us to it
                attempt(f"delete {ns}", _ip, "netns", "del", ns)
            if ns.startswith("ehc-"):
                shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        # The host veth dies with the server namespace; delete it directly if it lingers.
        # The kernel removes it asynchronously, so it may vanish between look and delete.
        if Path(f"/sys/class/net/{self.host_if}").exists():
            _run(["ip", "link", "del", self.host_if], check=False)
            if Path(f"/sys/class/net/{self.host_if}").exists():
                errors.append(f"delete {self.host_if}: it is still there")
        if self._lock is not None:
            self._lock.close()
        (OWNER_DIR / self.id).unlink(missing_ok=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir.parent, ignore_errors=True)
        if errors:
            raise LabError(f"lab {self.id} cleanup problems: " + "; ".join(errors))

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lab({self.id}, server={self.server_ns}, uplink={self.uplink_server_ip})"

    # -- leftovers --------------------------------------------------------------

    @staticmethod
    def reap_stale() -> list[str]:
        """Delete namespaces of labs whose owning process is gone (a killed test run).

        Only labs with an owner record under /run/etcdhcp-lab are touched, and only when
        that PID no longer runs (or now belongs to a different process).
        """
        out = _run(["ip", "netns", "list"], timeout=10, check=False).stdout
        by_id: dict[str, list[str]] = {}
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            match = _NS_RE.match(name)
            if match:
                by_id.setdefault(match.group(1), []).append(name)
        reaped: list[str] = []
        for lab_id, names in by_id.items():
            record = OWNER_DIR / lab_id
            try:
                pid_s, start = record.read_text().split()
                pid = int(pid_s)
            except (OSError, ValueError):
                continue
            if _proc_start_time(pid) == start:
                continue  # its owner still runs
            for ns in sorted(names):  # ehc- (clients) sort before ehs- (server)
                with contextlib.suppress(Exception):
                    _kill_pids(_netns_pids(ns))
                _run(["ip", "netns", "del", ns], timeout=10, check=False)
                shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
                reaped.append(ns)
            if Path(f"/sys/class/net/eh{lab_id}").exists():
                _run(["ip", "link", "del", f"eh{lab_id}"], timeout=10, check=False)
            record.unlink(missing_ok=True)
        return reaped


def iter_lab_leftovers(lab_id: str) -> Iterator[str]:
    """Names of any namespace, host interface or /etc/netns dir of ``lab_id`` still there."""
    out = _run(["ip", "netns", "list"], timeout=10, check=False).stdout
    for line in out.splitlines():
        words = line.split()
        if words and lab_id in words[0]:
            yield f"netns {words[0]}"
    if Path(f"/sys/class/net/eh{lab_id}").exists():
        yield f"host interface eh{lab_id}"
    netns_etc = Path("/etc/netns")
    if netns_etc.is_dir():
        for d in netns_etc.iterdir():
            if lab_id in d.name:
                yield f"dir {d}"
