"""The Debian package on a clean Debian 12: scripts/deb-check.sh builds the .deb,
installs it with apt into a fresh bookworm root, checks both commands, the units and
the files, then boots that root with systemd and runs etcdhcp.service there until a
real dhclient gets a lease; reload, upgrade, stop, a per-interface instance, purge."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from etcdhcp import __version__

from .lab import iter_lab_leftovers

REPO = Path(__file__).resolve().parents[2]
# Without today's bookworm root cached, debootstrap and apt download ~60 MB.
BOUND = 1800
# A minimal unit (ExecStart= alone) scores 9.6, "UNSAFE"; ours 1.6 when this was written.
MAX_EXPOSURE = 2.0


def deb_check_mounts() -> set[str]:
    """Mount lines of deb-check runs: a run killed earlier may have left its own."""
    return {m for m in Path("/proc/mounts").read_text().splitlines() if "etcdhcp-deb-check" in m}


def test_deb_installs_serves_and_purges_on_clean_bookworm() -> None:
    before = deb_check_mounts()
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "deb-check.sh")],
        capture_output=True,
        text=True,
        timeout=BOUND,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    out = run.stdout
    assert run.returncode == 0, f"{out}\n{run.stderr}"

    def line(pattern: str) -> re.Match[str]:
        found = re.search(rf"^deb-check: {pattern}", out, re.M)
        assert found, f"no line 'deb-check: {pattern}' in\n{out}"
        return found

    version = re.escape(__version__)
    mac, ip = r"[0-9a-f:]{17}", r"198\.18\.0\.\d+"
    line(rf"built etcdhcp_{version}_all\.deb")
    line(r"apt-get install \./etcdhcp_\S+: \d+ packages newly installed from Debian")
    line(rf"etcdhcp --version: etcdhcp {version}$")
    line(r"etcdhcpctl --help: ok \(usage: etcdhcpctl")
    line(r"systemd-analyze verify /lib/systemd/system/etcdhcp\.service: ok")
    line(r"systemd-analyze verify /tmp/etcdhcp@eth0\.service: ok")
    line(r"etcdhcp\.service after install: disabled, not started")
    line(r"user etcdhcp \(etcdhcp:x:\d+:\d+:.*:/var/lib/etcdhcp:/usr/sbin/nologin\)")
    line(r"dpkg --purge etcdhcp \(offline\): user, group, /var/lib/etcdhcp, conffiles, units gone")
    booted = line(r"booted the root with systemd in network namespace ehs-(\w{8}) \(state: ")
    line(r"installed under systemd: etcdhcp\.service disabled, inactive")
    # Not root, and only CAP_NET_RAW (bit 13) and CAP_NET_BIND_SERVICE (bit 10).
    started = line(r"systemctl start etcdhcp\.service: active, main PID Uid: (\d+) .*CapEff: (\w+)")
    assert started.group(1) != "0" and started.group(2) == "0000000000002400"
    exposure = line(r"systemd-analyze security etcdhcp\.service: exposure ([\d.]+)$")
    assert float(exposure.group(1)) <= MAX_EXPOSURE
    line(rf"dhclient got {ip} for {mac} from etcdhcp\.service; etcd agrees")
    line(rf"etcdhcpctl lease show {mac}: {ip}$")
    line(rf"dhclient -r: {ip} is free again")
    line(r"systemctl reload etcdhcp\.service: configuration re-read, same main PID")
    line(r"upgrade under systemd: etcdhcp\.service restarted")
    line(r"systemctl stop etcdhcp\.service: exit status 0")
    line(r"systemctl start etcdhcp@srv0\.service: active, state in /var/lib/etcdhcp/srv0")
    line(r"apt-get purge etcdhcp under systemd: instances stopped; package files, user, state gone")
    assert out.splitlines()[-1].startswith(
        f"deb-check: OK: etcdhcp {__version__} installs, serves and purges"
    )

    assert list(iter_lab_leftovers(booted.group(1))) == []
    assert deb_check_mounts() <= before
