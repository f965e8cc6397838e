#!/usr/bin/env bash
# The demo: etcdhcp with an embedded single-node etcd serves a real dhclient.
# Everything runs in two network namespaces created here (198.18.0.0/24 only) and
# is removed again on exit. Run as root on Debian 12: ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
srv=ehdemo-s-$id
cli=ehdemo-c-$id
work=$(mktemp -d /tmp/etcdhcp-demo.XXXXXX)
daemon_pid=""

cleanup() {
  set +e
  if [ -f "$work/dhclient.pid" ]; then
    ip netns exec "$cli" dhclient -x -pf "$work/dhclient.pid" -lf "$work/dhclient.leases" eth0 2>/dev/null
  fi
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$daemon_pid" 2>/dev/null
  fi
  ip netns del "$cli" 2>/dev/null
  ip netns del "$srv" 2>/dev/null
  rm -rf "/etc/netns/$cli" "$work"
}
trap cleanup EXIT

echo "== creating namespaces $srv (server) and $cli (client)"
ip netns add "$srv"
ip netns add "$cli"
for ns in "$srv" "$cli"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
ip link add srv0 netns "$srv" type veth peer name eth0 netns "$cli"
ip -n "$srv" addr add 198.18.0.1/24 dev srv0
ip -n "$srv" link set srv0 up
ip -n "$cli" link set eth0 up
mkdir -p "/etc/netns/$cli" && : > "/etc/netns/$cli/resolv.conf"

echo "== starting etcdhcp (embedded etcd, state in $work/state)"
ip netns exec "$srv" .venv/bin/etcdhcp \
  -dhcp.server-if srv0 -dhcp.server-ip 198.18.0.1 -dhcp.subnet-mask 255.255.255.0 \
  -dhcp.router 198.18.0.1 -dhcp.dns 198.18.0.1 \
  -dhcp.issue-from 198.18.0.10 -dhcp.issue-to 198.18.0.100 \
  -admin-addr 127.0.0.1:9842 --state-dir "$work/state" >"$work/etcdhcp.log" 2>&1 &
daemon_pid=$!
ready=""
for _ in $(seq 100); do
  if ip netns exec "$srv" .venv/bin/python -c \
      'import urllib.request; urllib.request.urlopen("http://127.0.0.1:9842/readyz", timeout=1)' 2>/dev/null; then
    ready=yes; break
  fi
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "etcdhcp did not become ready:"; cat "$work/etcdhcp.log"; exit 1
fi
sed 's/^/    /' "$work/etcdhcp.log"

echo "== dhclient in $cli asks for a lease"
timeout 60 ip netns exec "$cli" unshare --uts \
  dhclient -1 -v -lf "$work/dhclient.leases" -pf "$work/dhclient.pid" eth0 2>&1 | sed 's/^/    /'
echo "== the client's address"
ip -n "$cli" -4 addr show eth0 | sed 's/^/    /'
mac=$(ip -n "$cli" link show eth0 | awk '/link\/ether/ {print $2}')

echo "== the lease in etcd (etcdctl get --prefix etcdhcp::, free addresses left out)"
ip netns exec "$srv" env ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2479 \
  get --prefix etcdhcp:: | paste - - | grep -v '::ips::free::' | sed 's/^/    /'
free=$(ip netns exec "$srv" env ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2479 \
  get --prefix etcdhcp::ips::free:: --keys-only | grep -c . || true)
echo "    ($free addresses under etcdhcp::ips::free::)"
echo "== etcdctl get etcdhcp::nics::leased::$mac"
ip netns exec "$srv" env ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2479 \
  get "etcdhcp::nics::leased::$mac" | sed 's/^/    /'

echo "== a few metrics from http://127.0.0.1:9842/metrics"
ip netns exec "$srv" .venv/bin/python -c '
import urllib.request
text = urllib.request.urlopen("http://127.0.0.1:9842/metrics", timeout=2).read().decode()
for line in text.splitlines():
    if line.startswith(("etcdhcp_replies_sent_total", "etcdhcp_pool_addresses", "etcdhcp_leases_total")) and not line.endswith(" 0.0"):
        print("    " + line)'

ip -n "$cli" -4 addr show eth0 | grep -q 'inet 198\.18\.0\.' || { echo "demo FAILED: no lease"; exit 1; }
echo "== demo OK: dhclient leased an address from etcdhcp; cleaning up"
