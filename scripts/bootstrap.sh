#!/usr/bin/env bash
# Installs everything etcdhcp's demo, tests and benchmark need on Debian 12 (as root):
# Debian packages (etcd, the real DHCP clients, perfdhcp, Debian's Python libraries for
# the .deb code path) and a venv in .venv with the project installed editable.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  etcd-server etcd-client iproute2 procps util-linux tcpdump
  isc-dhcp-client udhcpc dhcpcd-base kea-admin libpcap0.8
  python3 python3-venv python3-pip
  python3-etcd3 python3-scapy python3-prometheus-client python3-configargparse
  python3-dnspython dnsmasq-base
  openssl  # tests/integration/pki.py: certificates for the TLS etcd tests
  kea-dhcp4-server postgresql python3-matplotlib  # bench/: Kea, its lease DB, plots
  isc-dhcp-relay kea-doc  # the relay lab; Kea's example configurations
  qemu-system-x86 ipxe-qemu ipxe ovmf tftpd-hpa  # the network-boot lab (docs/netboot.md)
  # scripts/build-deb.sh and deb-check.sh: build the .deb, try it in a bookworm root
  debhelper dh-python python3-all python3-setuptools dpkg-dev debootstrap systemd-container
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# On a fresh VM unattended-upgrades often holds the dpkg lock: wait up to 10 minutes
# for it (DPkg::Lock::Timeout) instead of failing at once with exit status 100.
# noninteractive: isc-dhcp-relay asks debconf questions.
apt_wait=(-o DPkg::Lock::Timeout=600)
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]} (waiting for the dpkg lock if another apt holds it)"
  apt-get "${apt_wait[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# Installing etcd-server may start a system etcd on 2379; etcdhcp's tests never use it.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.etcdhcp-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

# etcdhcp and etcdhcpctl on the PATH outside the .deb: links in /usr/local/bin to the
# venv, made only where nothing else (an admin's own script) has that name already.
for cmd in etcdhcp etcdhcpctl; do
  link=/usr/local/bin/$cmd
  if [ ! -e "$link" ] && [ ! -L "$link" ] || [[ "$(readlink "$link")" == */.venv/bin/$cmd ]]; then
    ln -sfn "$PWD/.venv/bin/$cmd" "$link"
  fi
done
