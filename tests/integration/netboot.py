"""Diskless QEMU VMs that network-boot in the lab: BIOS and UEFI, TFTP, iPXE, HTTP.

Layout (FIELD-NOTES.md, "A real network-boot client: iPXE under QEMU")::

    host namespace: etcd (lab.etcd())
    server namespace ehs-<id>: br0 198.18.0.1, etcdhcp serving etcd's documents
      |-- vm<k>  tap of a QEMU VM (TCG, no disk), one per firmware
      |-- p0 ==veth== eth0 198.18.0.2: the boot host, namespace ehc-<id>-0
                        in.tftpd (tftpd-hpa), python's http.server,
                        an answerer of IPv6 router solicitations

The boot host is not etcdhcp's address: a VM reaches TFTP only through the next-server
(siaddr) and boot file etcdhcp sends, and HTTP only through the URL a class sends.

The two firmwares:

- UEFI: OVMF's own network stack (no iPXE option ROM: `romfile=`), a PXE client that
  sends option 93 = 7 and no user class; it fetches `ipxe.efi` by TFTP, and that iPXE's
  DHCP (user class `iPXE`) gets the script's URL.
- BIOS: QEMU's only BIOS PXE ROMs are Debian's iPXE, whose very first DHCP already says
  user class `iPXE` (it would go straight to the script and never use TFTP). So the
  BIOS VM's PXE client is Debian's `ipxe.lkrn`, started by QEMU as a kernel, with a
  first-stage script that sends user class `PXE-ROM` (as a vendor's PXE ROM sends none
  that reads `iPXE`), fetches `${filename}` from `${next-server}` by TFTP and chains it:
  `undionly.kpxe`, whose own DHCP says `iPXE` and gets the script's URL.

iPXE waits for an IPv6 router advertisement for ~13 s before it uses its IPv4
configuration; the boot host answers every router solicitation with one that ends
iPXE's IPv6 autoconfiguration (router lifetime 0, no DHCPv6): the boots take seconds.
Run as ``python -m tests.integration.netboot ra IFACE`` (repository root) for that.

in.tftpd logs only to syslog: it runs in a private mount namespace whose /dev (a tmpfs
with null, zero, random and urandom) has `log` pointing at a datagram socket of the
test's, so its log lines ("RRQ from 198.18.0.100 filename undionly.kpxe") are read
back. Every process is started by lab.popen and stopped by PID (QEMU by its pid file).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etcdhcp.codec import inet_checksum

from .daemon import EtcdhcpProcess
from .lab import Client, Lab, LabError

BOOT_IP = "198.18.0.2"
HTTP_PORT = 8080
SCRIPT_NAME = "boot.ipxe"
SCRIPT_URL = f"http://{BOOT_IP}:{HTTP_PORT}/{SCRIPT_NAME}"
IPXE_DIR = Path("/usr/lib/ipxe")
OVMF = Path("/usr/share/ovmf/OVMF.fd")
FIRST_STAGE_USER_CLASS = "PXE-ROM"
ROOT = Path(__file__).resolve().parents[2]
# What the lab needs besides the namespace lab's tools (scripts/bootstrap.sh installs it).
NEEDED = ("qemu-system-x86_64", "in.tftpd", "tcpdump")
NEEDED_FILES = (OVMF, *(IPXE_DIR / f for f in ("ipxe.lkrn", "undionly.kpxe", "ipxe.efi")))

# The BIOS VM's PXE client (ipxe.lkrn): DHCP as a PXE ROM would, then TFTP and chain.
_FIRST_STAGE = f"""#!ipxe
set user-class {FIRST_STAGE_USER_CLASS}
dhcp
echo first stage: next-server ${{next-server}} filename ${{filename}}
clear user-class
chain tftp://${{next-server}}/${{filename}}
"""

# /dev for in.tftpd: a tmpfs with the few devices it uses and `log` -> the test's socket.
_PRIVATE_DEV = """set -e
dev=$1; sock=$2; shift 2
mount -t tmpfs netboot-dev "$dev"
for name in null zero random urandom; do
  touch "$dev/$name"; mount --bind "/dev/$name" "$dev/$name"
done
ln -s "$sock" "$dev/log"
mount --rbind "$dev" /dev
exec "$@"
"""

_ANSI = re.compile(r"\x1b(?:\[[0-9;?=]*[A-Za-z]|[()][A-Za-z0-9])")
_DHCP_TYPE = re.compile(r"DHCP-Message \(53\), length 1: (\w+)")
_RRQ = re.compile(r'RRQ "([^"]+)"')
_TFTPD_RRQ = re.compile(r"RRQ from (\S+) filename (\S+)")
_HTTP_GET = re.compile(r'^(\S+) - - \[[^]]*\] "GET /(\S*) HTTP/[\d.]+" (\d+)', re.M)


@dataclass(frozen=True)
class Firmware:
    """One kind of network-booting machine and what a good boot of it looks like."""

    name: str  # "bios" / "efi"
    platform: str  # iPXE's ${platform} once chained: "pcbios" / "efi"
    arch: int  # option 93 its PXE client sends
    boot_file: str  # what it should get by TFTP
    budget: float  # seconds from QEMU's start to the script's output
    memory: int  # MiB

    @property
    def mac(self) -> str:
        """The VM's MAC: fixed, so a host record can name it before the VM starts."""
        return f"52:54:00:06:00:{0x10 + self.arch:02x}"

    def qemu_args(self, workdir: Path) -> list[str]:
        """The firmware part of QEMU's command line (the BIOS one writes its stage 1)."""
        if self.name == "efi":
            return ["-m", str(self.memory), "-bios", str(OVMF), "-boot", "n"]
        first_stage = workdir / "first-stage.ipxe"
        first_stage.write_text(_FIRST_STAGE)
        lkrn = str(IPXE_DIR / "ipxe.lkrn")
        return ["-m", str(self.memory), "-kernel", lkrn, "-initrd", str(first_stage)]


BIOS = Firmware("bios", "pcbios", 0, "undionly.kpxe", 60.0, 256)
EFI = Firmware("efi", "efi", 7, "ipxe.efi", 120.0, 512)


@dataclass
class Boot:
    """What one VM did: the script's output line, when, and what the wire saw."""

    firmware: Firmware
    mac: str
    seconds: float | None  # QEMU start -> the marker on the serial console (None: never)
    ip: str | None = None
    platform: str | None = None
    filename: str | None = None
    serial: str = ""
    timeline: list[tuple[float, str]] = field(default_factory=list)
    qemu_log: str = ""

    def story(self) -> str:
        """The timeline, the serial console and QEMU's own output, for a failure message."""
        events = "\n".join(f"  {t:6.1f} s  {what}" for t, what in self.timeline)
        return (
            f"{self.firmware.name} VM {self.mac}: marker after {self.seconds} s\n"
            f"wire (from the VM's tap):\n{events}\nserial console:\n{self.serial}\n"
            f"QEMU:\n{self.qemu_log}"
        )

    def first(self, what: str) -> str:
        """Seconds to the first timeline event starting with `what` ("DHCP Discover")."""
        return next((f"{t:.1f}" for t, event in self.timeline if event.startswith(what)), "-")

    def summary(self) -> str:
        """One line of boot times: what docs/netboot.md records."""
        acks = ", ".join(f"{t:.1f}" for t, event in self.timeline if event == "DHCP ACK")
        marker = "-" if self.seconds is None else f"{self.seconds:.1f}"
        return (
            f"{self.firmware.name}: first DISCOVER {self.first('DHCP Discover')} s, "
            f"ACKs {acks or '-'} s, TFTP {self.first('TFTP RRQ')} s, "
            f"HTTP {self.first('HTTP connect')} s, marker {marker} s"
        )


class BootHost:
    """198.18.0.2 on the lab's LAN: tftpd-hpa and an HTTP server with the iPXE script."""

    def __init__(self, lab: Lab, marker: str) -> None:
        self.lab = lab
        self.marker = marker
        self.host: Client = lab.add_client("boot", address=f"{BOOT_IP}/24")
        self.dir = lab.workdir / "boot-host"
        self.tftp_root = self.dir / "tftp"
        self.http_root = self.dir / "http"
        for d in (self.tftp_root, self.http_root, self.dir / "dev"):
            d.mkdir(parents=True, exist_ok=True)
        for name in (BIOS.boot_file, EFI.boot_file):
            self.add_tftp_copy(name, name)
        self.add_script(SCRIPT_NAME)
        self.log = self.dir / "boot-host.log"  # http.server's requests, the RA answerer
        self._syslog_path = self.dir / "tftpd.sock"
        self._syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._syslog.bind(str(self._syslog_path))
        self._syslog.setblocking(False)
        self._tftpd_lines: list[str] = []

    def add_tftp_copy(self, name: str, build: str) -> None:
        """Serve iPXE's `build` (undionly.kpxe, ipxe.efi) by TFTP as `name` (a host's own)."""
        shutil.copyfile(IPXE_DIR / build, self.tftp_root / name)

    def add_script(self, name: str) -> None:
        """Serve the marker script by HTTP as `name` (a host's own name for it)."""
        line = f"echo {self.marker} ip=${{ip}} platform=${{platform}} file=${{filename}}"
        (self.http_root / name).write_text(f"#!ipxe\n{line}\nexit\n")

    def start(self, timeout: float = 15.0) -> None:
        """Start the three servers; return once TFTP and HTTP answer from etcdhcp's side."""
        tftpd = ["in.tftpd", "-L", "-4", "-u", "root", "-v", "-v", "-v", "-s", self.tftp_root]
        dev = [str(self.dir / "dev"), str(self._syslog_path)]
        self.host.popen(
            ["unshare", "--mount", "sh", "-c", _PRIVATE_DEV, "netboot-dev", *dev, *tftpd]
        )
        http = [sys.executable, "-m", "http.server", str(HTTP_PORT), "--bind", BOOT_IP]
        with open(self.log, "ab") as log:
            self.host.popen(
                [*http, "--directory", str(self.http_root)], stdout=log, stderr=subprocess.STDOUT
            )
            self.host.popen(
                [sys.executable, "-m", "tests.integration.netboot", "ra", "eth0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        server = self.lab.server_ns
        tftp = ["busybox", "tftp", "-g", "-r", BIOS.boot_file, "-l", "/dev/null", BOOT_IP]
        wget = ["busybox", "wget", "-q", "-O", "-", SCRIPT_URL]
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.2) + 1):
            got = self.lab.run(server, tftp, timeout=10).returncode == 0
            script = self.lab.run(server, wget, timeout=10).stdout
            if got and self.marker in script:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise LabError(
            f"the boot host did not serve TFTP and HTTP within {timeout:g}s:\n"
            f"{self.tftpd_log()}\n{self.log.read_text(errors='replace')}"
        )

    def tftpd_log(self) -> str:
        """Every line in.tftpd has logged so far."""
        while True:
            try:
                self._tftpd_lines.append(self._syslog.recv(4096).decode(errors="replace"))
            except BlockingIOError:
                return "\n".join(self._tftpd_lines)

    def tftp_requests(self) -> list[tuple[str, str]]:
        """(client address, file) of every read request in.tftpd logged."""
        return _TFTPD_RRQ.findall(self.tftpd_log())

    def http_requests(self) -> list[tuple[str, str, int]]:
        """(client address, path, status) of every GET the HTTP server logged."""
        text = self.log.read_text(errors="replace")
        return [(ip, path, int(status)) for ip, path, status in _HTTP_GET.findall(text)]

    def close(self) -> None:
        self._syslog.close()


class VirtualMachine:
    """A diskless QEMU VM on a tap of the lab's br0; its serial console goes to a file."""

    def __init__(self, lab: Lab, firmware: Firmware) -> None:
        self.lab = lab
        self.firmware = firmware
        self.mac = firmware.mac
        self.tap = f"vm-{firmware.name}"
        self.dir = lab.workdir / f"vm-{firmware.name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.serial_path = self.dir / "serial.log"
        self.log_path = self.dir / "qemu.log"
        self.pid_file = self.dir / "qemu.pid"
        self.wire_path = self.dir / "wire.txt"
        self.proc: subprocess.Popen[Any] | None = None
        self.tcpdump: subprocess.Popen[Any] | None = None
        self.started = 0.0
        self._wall_minus_monotonic = 0.0

    def start(self) -> None:
        """Plug a tap into br0, start watching it, then start QEMU."""
        ns = self.lab.server_ns
        self.lab.run(ns, ["ip", "tuntap", "add", "dev", self.tap, "mode", "tap"], check=True)
        self.lab.run(ns, ["ip", "link", "set", self.tap, "master", "br0", "up"], check=True)
        self._watch_wire()
        nic = f"virtio-net-pci,disable-legacy=on,netdev=n0,mac={self.mac},romfile="
        argv = [
            "qemu-system-x86_64", "-accel", "tcg", "-nodefaults", "-machine", "pc",
            *self.firmware.qemu_args(self.dir),
            "-nographic", "-monitor", "none", "-no-reboot",
            "-serial", f"file:{self.serial_path}", "-pidfile", str(self.pid_file),
            "-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
            "-device", nic,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.started = time.monotonic()
            self.proc = self.lab.popen(ns, argv, stdout=log, stderr=subprocess.STDOUT)

    def _watch_wire(self, timeout: float = 10.0) -> None:
        """tcpdump on the tap: DHCP, TFTP requests and HTTP connections, timestamped."""
        capture = "udp port 67 or udp port 68 or udp port 69 or tcp[tcpflags] == tcp-syn"
        argv = ["tcpdump", "-i", self.tap, "--immediate-mode", "-n", "-l", "-tt", "-v", capture]
        with open(self.wire_path, "wb") as out, open(self.dir / "tcpdump.err", "wb") as err:
            self.tcpdump = self.lab.popen(self.lab.server_ns, argv, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.05) + 1):
            if "listening on" in (self.dir / "tcpdump.err").read_text(errors="replace"):
                self._wall_minus_monotonic = time.time() - time.monotonic()
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        raise LabError(f"tcpdump on {self.tap} did not start")

    def serial(self) -> str:
        """The serial console so far, without terminal escapes and carriage returns."""
        raw = self.serial_path.read_bytes() if self.serial_path.exists() else b""
        return _ANSI.sub("", raw.decode(errors="replace")).replace("\r", "")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def timeline(self) -> list[tuple[float, str]]:
        """(seconds since QEMU started, event) for what the VM sent and got on the wire."""
        text = self.wire_path.read_text(errors="replace") if self.wire_path.exists() else ""
        events: list[tuple[float, str]] = []
        for packet in re.split(r"\n(?=\d+\.\d+ )", text):
            stamp, _, body = packet.partition(" ")
            try:
                at = float(stamp) - self._wall_minus_monotonic - self.started
            except ValueError:
                continue
            kind = _DHCP_TYPE.search(body)
            if kind and f"Client-Ethernet-Address {self.mac}" in body:  # not the other VM's
                events.append((at, f"DHCP {kind.group(1)}"))
            elif rrq := _RRQ.search(body):
                events.append((at, f"TFTP RRQ {rrq.group(1)}"))
            elif f".{HTTP_PORT}: Flags [S]" in body:
                events.append((at, "HTTP connect"))
        return events

    def stop(self) -> None:
        """Kill QEMU by the PID in its pid file, then tcpdump (which flushes the wire file).
        Idempotent; lab.close() is the safety net."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                if int(self.pid_file.read_text().split()[0]) == self.proc.pid:
                    self.proc.send_signal(signal.SIGTERM)
            _reap(self.proc)
        if self.tcpdump is not None and self.tcpdump.poll() is None:
            self.tcpdump.send_signal(signal.SIGTERM)
            _reap(self.tcpdump)


def _reap(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Wait for a signalled process; SIGKILL it if it has not gone within `timeout`."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def boot(lab: Lab, firmware: Firmware, marker: str) -> Boot:
    """Boot a VM with `firmware` until the script's line appears (or its budget is spent)."""
    vm = VirtualMachine(lab, firmware)
    line = re.compile(re.escape(marker) + r" ip=(\S*) platform=(\S*) file=(\S*)")
    seconds, match = None, None
    try:
        vm.start()
        for _ in range(int(firmware.budget / 0.2) + 1):
            match = line.search(vm.serial())
            elapsed = time.monotonic() - vm.started
            if match or not vm.running() or elapsed > firmware.budget:
                seconds = elapsed if match else None
                break
            time.sleep(0.2)
    finally:
        vm.stop()
    groups = match.groups() if match else (None, None, None)
    qemu_log = vm.log_path.read_text(errors="replace")
    return Boot(firmware, vm.mac, seconds, *groups, vm.serial(), vm.timeline(), qemu_log)


def missing() -> list[str]:
    """The programs and files of NEEDED and NEEDED_FILES this host lacks."""
    lacking = [tool for tool in NEEDED if shutil.which(tool) is None]
    return lacking + [str(path) for path in NEEDED_FILES if not path.exists()]


def new_marker() -> str:
    """A line no firmware prints by itself: the script's proof that it ran."""
    return f"MARKER-{secrets.token_hex(4)}"


class NetbootLab:
    """A lab with etcd, one etcdhcp serving etcd's documents only, and the boot host."""

    def __init__(self, lab: Lab, prefix: str = "etcdhcp::") -> None:
        self.lab = lab
        self.prefix = prefix
        self.marker = new_marker()
        self.etcd = lab.etcd()
        self.boot_host = BootHost(lab, self.marker)
        self.daemon: EtcdhcpProcess | None = None

    def etcdctl(self, *args: str) -> str:
        env = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
        argv = ["etcdctl", "--endpoints", self.etcd.client_url, *args]
        return self.lab.run(None, argv, env=env, check=True, timeout=20).stdout

    def ctl(self, *args: str) -> str:
        """`etcdhcpctl ARGS` against the lab's etcd, as an operator runs it; must succeed."""
        ctl = str(Path(sys.executable).with_name("etcdhcpctl"))
        connect = ["--config=", "-etcd.discovery.endpoints", self.etcd.client_url]
        argv = [ctl, *connect, "-etcd.prefix", self.prefix, *args]
        return self.lab.run(None, argv, check=True, timeout=60).stdout

    def import_kea(self, text: str) -> str:
        """`etcdhcpctl import-kea FILE` of a Kea configuration."""
        path = self.lab.workdir / "kea-dhcp4.conf"
        path.write_text(text)
        return self.ctl("import-kea", str(path))

    def start(self) -> None:
        self.boot_host.start()
        self.daemon = EtcdhcpProcess(
            self.lab, self.etcd.client_url, prefix=self.prefix, issue_from=None
        ).start()

    def boot(self, firmware: Firmware) -> Boot:
        return boot(self.lab, firmware, self.marker)

    def leases(self) -> dict[str, str]:
        """MAC -> address of every lease in etcd."""
        lines = self.etcdctl("get", "--prefix", f"{self.prefix}nics::leased::").splitlines()
        return {k.rsplit("::", 1)[-1]: v for k, v in zip(lines[0::2], lines[1::2], strict=True)}

    def close(self) -> int | None:
        """Stop etcdhcp (its exit status) and the boot host's log socket."""
        self.boot_host.close()
        return self.daemon.stop() if self.daemon else None


# -- the router-advertisement answerer (run in the boot host's namespace) --------------

_ETH_P_IPV6 = 0x86DD
_ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")


def router_advertisement(mac: bytes) -> bytes:
    """An Ethernet frame: "I am no default router, no prefixes, no DHCPv6" to all nodes."""
    eui = bytes([mac[0] ^ 2, *mac[1:3], 0xFF, 0xFE, *mac[3:]])
    source = bytes.fromhex("fe80000000000000") + eui
    # type 134, code 0, checksum, hop limit 64, no M/O flags, lifetime 0, reachable,
    # retransmit; then the source link-layer address option (type 1, 1 block).
    body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 0, 0, 0) + bytes([1, 1]) + mac
    pseudo = source + _ALL_NODES + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", inet_checksum(pseudo + body)) + body[4:]
    ipv6 = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + source + _ALL_NODES
    ethernet = bytes.fromhex("333300000001") + mac + struct.pack("!H", _ETH_P_IPV6)
    return ethernet + ipv6 + body


def answer_router_solicitations(iface: str) -> None:
    """Answer every ICMPv6 router solicitation on `iface` (forever; killed by PID)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_IPV6))
    sock.bind((iface, 0))
    frame = router_advertisement(sock.getsockname()[4])
    while True:
        data = sock.recv(2048)
        # IPv6 next header ICMPv6 (58), no extension headers, type 133.
        if len(data) > 54 and data[20] == 58 and data[54] == 133:
            sock.send(frame)


if __name__ == "__main__":
    if sys.argv[1:2] != ["ra"] or len(sys.argv) != 3:
        sys.exit("usage: python -m tests.integration.netboot ra IFACE")
    answer_router_solicitations(sys.argv[2])
