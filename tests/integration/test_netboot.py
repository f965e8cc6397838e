"""Real network boot (issue 15): diskless QEMU VMs boot from etcdhcp, tftpd-hpa and HTTP.

One lab for the module (netboot.py): etcd, one etcdhcp serving etcd's documents only,
and a boot host at 198.18.0.2 (not etcdhcp's address) running tftpd-hpa and an HTTP
server. The configuration is Kea's classic iPXE chainload: the PXE client of each
firmware (option 93: 0 BIOS, 7 UEFI) gets next-server and its own iPXE build by TFTP;
that iPXE's DHCP says user class `iPXE` (option 77), and the `ipxe` class answers it
with the URL of a script instead, so the chainload loop is broken by a class. The
script prints a marker line with iPXE's ${ip} and ${platform} on the serial console.

The BIOS VM has a host record (docs/hosts.md): its own boot-file-name, a copy of
undionly.kpxe under the host's name, beats the `bios` class in the PXE ROM's DHCP and the
`ipxe` class in iPXE's. A host's boot file is its file in every DHCP exchange, so the
chainload loop is broken in the host's option-data instead: iPXE's scriptlet (option
175.81), which the chained iPXE finds in the DHCPACK its PXE ROM kept and runs instead of
booting ${filename}; it chains the host's own script. The UEFI VM has no host: its
classes decide.

The VMs boot one after the other (TCG); their boot times are printed (pytest -s).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

import pytest
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import Ether

from .conftest import _require_lab_host
from .lab import Lab
from .netboot import (
    BIOS,
    BOOT_IP,
    EFI,
    HTTP_PORT,
    SCRIPT_NAME,
    Firmware,
    NetbootLab,
    missing,
    router_advertisement,
)

POOL = ("198.18.0.100", "198.18.0.149")

KEA_FILE = """\
// etcdhcp's network-boot lab (tests/integration/test_netboot.py), in Kea's own shape.
{
  "Dhcp4": {
    "valid-lifetime": 600,
    // iPXE's encapsulated options (175): no-pxedhcp (176) = 1, no 2 s wait for ProxyDHCP.
    "option-data": [{"code": 175, "csv-format": false, "data": "B0 01 01"}],
    "client-classes": [
      /* iPXE says user class "iPXE" (option 77): it gets the script's URL, not iPXE
         again, which would chainload it forever. */
      {
        "name": "ipxe",
        "test": "substring(option[77].hex,0,4) == 'iPXE'",
        "boot-file-name": "http://198.18.0.2:8080/boot.ipxe"
      },
      # A BIOS PXE client (client system, option 93, is 0): undionly.kpxe by TFTP.
      {
        "name": "bios",
        "test": "option[93].hex == 0x0000 and not member('ipxe')",
        "next-server": "198.18.0.2",
        "boot-file-name": "undionly.kpxe"
      },
      # A UEFI x64 PXE client (7): ipxe.efi.
      {
        "name": "uefi",
        "test": "option[93].hex == 0x0007 and not member('ipxe')",
        "next-server": "198.18.0.2",
        "boot-file-name": "ipxe.efi"
      }
    ],
    "subnet4": [
      {
        "id": 1,
        "subnet": "198.18.0.0/24",
        "pools": [{"pool": "198.18.0.100 - 198.18.0.149"}],
        "option-data": [{"name": "routers", "data": "198.18.0.1"}]
      }
    ]
  }
}
"""

# Named by the MAC, short: SeaBIOS wraps the console at 80 columns, and the marker line
# (file=${filename}) must fit.
HOST_FILE = f"{BIOS.mac.replace(':', '')}.kpxe"  # undionly.kpxe, the host's copy
HOST_SCRIPT = f"{BIOS.mac.replace(':', '')}.ipxe"


def ipxe_options(scriptlet: str) -> str:
    """Option 175's data (iPXE's space): no-pxedhcp (176) = 1, as the global level's, and
    the scriptlet (81) a chained iPXE runs instead of booting its DHCP's filename."""
    text = scriptlet.encode()
    return f"B0 01 01 51 {len(text):02X} {text.hex(' ').upper()}"


# The host's option 175 replaces the global one (a host's option wins whole): 176 again.
HOST = {
    "hw-address": BIOS.mac,
    "boot-file-name": HOST_FILE,
    "option-data": [
        {
            "code": 175,
            "csv-format": False,
            "data": ipxe_options(f"dhcp && chain http://{BOOT_IP}:{HTTP_PORT}/{HOST_SCRIPT}"),
        }
    ],
}
# What each VM fetches by TFTP and by HTTP, and how the file its iPXE's own DHCP gets
# starts: the BIOS VM's host's, over the classes'; the UEFI VM's class's, then the `ipxe`
# class's URL (a prefix: that line may wrap).
EXPECTED = {
    BIOS.name: (HOST_FILE, HOST_SCRIPT, HOST_FILE),
    EFI.name: (EFI.boot_file, SCRIPT_NAME, f"http://{BOOT_IP}:"),
}


@pytest.fixture(scope="module")
def netboot(
    tmp_path_factory: pytest.TempPathFactory, _stale_labs_reaped: None
) -> Iterator[NetbootLab]:
    """The lab, configured before etcdhcp starts; etcdhcp must exit cleanly at the end."""
    _require_lab_host()
    lacking = missing()
    if lacking:
        pytest.fail(f"the network-boot lab needs {', '.join(lacking)}: run scripts/bootstrap.sh")
    with Lab(workdir=tmp_path_factory.mktemp("netboot")) as lab:
        nb = NetbootLab(lab)
        try:
            imported = nb.import_kea(KEA_FILE)
            keys = nb.etcdctl("get", "--prefix", "--keys-only", f"{nb.prefix}config::").split()
            documents = [f"{nb.prefix}config::{name}" for name in ("global::dhcp4", "subnet4::1")]
            assert keys == documents, imported
            nb.boot_host.add_tftp_copy(HOST_FILE, BIOS.boot_file)
            nb.boot_host.add_script(HOST_SCRIPT)
            nb.ctl("host", "add", json.dumps(HOST), "--scope", "1")
            nb.start()
            yield nb
        finally:
            status = nb.close()
        log = nb.daemon.log() if nb.daemon else ""
        assert status == 0, f"etcdhcp exited {status}:\n{log}"
        assert "Traceback" not in log, log


@pytest.mark.parametrize("firmware", [BIOS, EFI], ids=lambda f: f.name)
def test_vm_boots_its_ipxe_by_tftp_then_the_script_by_http(
    netboot: NetbootLab, firmware: Firmware
) -> None:
    boot = netboot.boot(firmware)
    print(f"\n{boot.summary()}")
    story = boot.story()
    assert boot.seconds is not None, f"no marker within {firmware.budget:g}s\n{story}"
    assert boot.platform == firmware.platform, story
    assert boot.ip and ipaddress.ip_address(POOL[0]) <= ipaddress.ip_address(boot.ip), story
    assert ipaddress.ip_address(boot.ip) <= ipaddress.ip_address(POOL[1]), story
    tftp_file, script, filename = EXPECTED[firmware.name]
    assert boot.filename and boot.filename.startswith(filename), story
    # next-server and the firmware's class, or its host: this VM fetched its own file (only
    # that one) by TFTP from the boot host, then its own script (only that one) by HTTP.
    host = netboot.boot_host
    fetched = {name for ip, name in host.tftp_requests() if ip == boot.ip}
    assert fetched == {tftp_file}, f"{host.tftpd_log()}\n{story}"
    scripts = {(path, status) for ip, path, status in host.http_requests() if ip == boot.ip}
    assert scripts == {(script, 200)}, story
    assert sum(event == "DHCP ACK" for _, event in boot.timeline) >= 2, story
    assert netboot.leases().get(boot.mac) == boot.ip


def test_router_advertisement_is_one_ipxe_accepts() -> None:
    """What the boot host answers iPXE's router solicitations with (its checksum counts:
    iPXE drops a bad one and waits out its ~13 s instead)."""
    mac = bytes.fromhex("02aabbccddee")
    frame = Ether(router_advertisement(mac))
    ra = frame[ICMPv6ND_RA]
    assert (frame.dst, frame[IPv6].dst, frame[IPv6].src) == (
        "33:33:00:00:00:01",
        "ff02::1",
        "fe80::aa:bbff:fecc:ddee",
    )
    assert (frame[IPv6].hlim, ra.routerlifetime, ra.M, ra.O) == (255, 0, 0, 0)
    assert frame[ICMPv6NDOptSrcLLAddr].lladdr == "02:aa:bb:cc:dd:ee"
    checked = ra.cksum
    del ra.cksum
    assert Ether(bytes(frame))[ICMPv6ND_RA].cksum == checked
