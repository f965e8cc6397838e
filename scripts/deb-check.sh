#!/usr/bin/env bash
# Proof that the Debian package works on a clean Debian 12, as root:
#   1. build etcdhcp_<version>_all.deb (scripts/build-deb.sh);
#   2. take a fresh bookworm root (debootstrap --variant=minbase, plus systemd and
#      man-db) and install the .deb there with `apt-get install ./etcdhcp_*.deb`, so
#      apt resolves every dependency from Debian's archive;
#   3. in that root: `etcdhcp --version`, `etcdhcpctl --help`, `systemd-analyze verify`
#      on both units, user, state directory, conffiles, man pages, nothing enabled;
#      purge it offline and check that what it created is gone;
#   4. boot the root with systemd (systemd-nspawn) inside a network namespace of its own
#      and install the package again, under systemd: nothing starts; configure it as an
#      operator would and `systemctl start etcdhcp` (Type=notify, the unit's user,
#      capabilities and sandbox, an embedded etcd) until a real dhclient in another
#      namespace gets a lease (198.18.0.0/24 only); etcdhcpctl sees it; release, reload,
#      upgrade (restarts), stop (exit 0), an etcdhcp@IFACE instance, purge (stops it).
# Lines starting "deb-check: " tell each result; the last is "deb-check: OK ...".
#
# The bookworm root is cached under $ETCDHCP_DEB_CHECK_CACHE (default
# /var/cache/etcdhcp-deb-check), one per day, and is never changed: each run works on
# an overlay of it, and Debian's .debs are cached beside it. ETCDHCP_DEB_CHECK_CACHE=
# (empty) makes a throwaway root instead. Needs the packages scripts/bootstrap.sh
# installs (debootstrap, debhelper, dh-python, systemd-container, isc-dhcp-client, ...).
# On any exit it stops what it started by PID and removes its namespaces and mounts.
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR=${ETCDHCP_DEB_CHECK_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${ETCDHCP_DEB_CHECK_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE=${ETCDHCP_DEB_CHECK_CACHE-/var/cache/etcdhcp-deb-check}
SAFE_PATH=/usr/sbin:/usr/bin:/sbin:/bin
SERVER_IF=srv0

started=$SECONDS
lap_started=$SECONDS
say() { echo "deb-check: $*"; }
fail() {
  echo "deb-check: FAILED: $*" >&2
  exit 1
}
lap() { # seconds since the previous lap, in $lap
  lap=$((SECONDS - lap_started))s
  lap_started=$SECONDS
}

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mounts, network namespaces)"
for tool in debootstrap dpkg-buildpackage dh_python3 ip unshare nsenter systemd-nspawn flock dhclient etcdctl; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/bootstrap.sh"
done

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/etcdhcp/__init__.py)
work=$(mktemp -d /var/tmp/etcdhcp-deb-check.XXXXXX)
root="$work/root"
id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
server_ns="ehs-$id" # the names tests/integration/lab.py reaps if this run is killed
client_ns="ehc-$id-0"
owner_record="/run/etcdhcp-lab/$id"
mounts=()
namespaces=()
nspawn_pid=""

# ---- cleanup: by PID, then namespaces, then mounts (innermost first), then files

kill_pids() {
  local pid alive=()
  for pid in "$@"; do
    [ "$pid" -gt 1 ] && [ "$pid" != $$ ] && kill -TERM "$pid" 2>/dev/null && alive+=("$pid")
  done
  for _ in $(seq 50); do
    local left=()
    for pid in "${alive[@]}"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    alive=("${left[@]}")
    [ ${#alive[@]} -eq 0 ] && return 0
    sleep 0.1
  done
  for pid in "${alive[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

cleanup() {
  local ns i
  set +e
  [ -n "$nspawn_pid" ] && kill_pids "$nspawn_pid" # systemd-nspawn: SIGTERM = poweroff
  for ns in "${namespaces[@]}"; do
    # shellcheck disable=SC2046 # one PID per word
    kill_pids $(ip netns pids "$ns" 2>/dev/null)
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "/etc/netns/$client_ns" "$owner_record"
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# sh -c "$CHROOT" NAME ROOT CMD...: CMD in ROOT with /proc, /sys and /dev mounted; run
# it in a mount namespace of its own, where these mounts vanish with it.
# shellcheck disable=SC2016 # expanded by that sh
CHROOT='r=$1; shift; mount -t proc proc "$r/proc" && mount -t sysfs sysfs "$r/sys" &&
        mount --rbind /dev "$r/dev" && exec chroot "$r" "$@"'
CLEAN_ENV=(env -i "PATH=$SAFE_PATH" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)

# in_root CMD...: CMD in the root, clean environment, bounded in time.
in_root() {
  "${CLEAN_ENV[@]}" timeout 900 unshare --mount --propagation private \
    sh -c "$CHROOT" in-root "$root" "$@"
}

# ---- 1. the package

deb=$(bash scripts/build-deb.sh "$work/dist") || fail "the package did not build"
lap
say "built $(basename "$deb") ($(stat -c %s "$deb") bytes) in $lap"

# ---- 2. a clean bookworm root: cached (read-only, under an overlay) or throwaway

make_base_root() { # DIR: debootstrap a minimal bookworm with systemd and man-db
  local dir=$1 root=$1/root # in_root works on $root
  rm -rf "$dir"
  mkdir -p "$dir"
  if ! timeout 1800 debootstrap --variant=minbase --include=systemd,man-db \
    bookworm "$dir/root" "$MIRROR" >"$dir/debootstrap.log" 2>&1; then
    tail -n 20 "$dir/debootstrap.log" >&2
    fail "debootstrap bookworm from $MIRROR failed"
  fi
  cat >"$dir/root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
  # Package scripts must not start services inside the root (etcd-server would).
  printf '#!/bin/sh\n# deb-check: no service starts in this root\nexit 101\n' \
    >"$dir/root/usr/sbin/policy-rc.d"
  chmod 0755 "$dir/root/usr/sbin/policy-rc.d"
  # Today's package lists: a run with the root and the .debs cached needs no network.
  in_root apt-get update -q >"$dir/apt-update.log" 2>&1 || {
    tail -n 20 "$dir/apt-update.log" >&2
    fail "apt-get update in the new root failed"
  }
  rm -rf "$dir/root/var/cache/apt/archives/"*.deb
}

if [ -n "$CACHE" ]; then
  mkdir -p "$CACHE/archives"
  # Bump the suffix when make_base_root changes what a root holds.
  base="$CACHE/bookworm-$(date -u +%Y%m%d)-v2"
  exec 9>"$CACHE/lock"
  flock -w 1800 9 || fail "$CACHE/lock: another deb-check kept it for 30 minutes"
  if [ -f "$base/complete" ]; then
    root_kind="warm: cached $base/root"
  else
    make_base_root "$base.new"
    touch "$base.new/complete"
    rm -rf "$base"
    mv "$base.new" "$base"
    for old in "$CACHE"/bookworm-*; do [ "$old" = "$base" ] || rm -rf "$old"; done
    root_kind="cold: debootstrap into $base/root, cached for today"
  fi
  flock -s 9 # keep today's root from being pruned while this run uses it
  archives="$CACHE/archives"
else
  base="$work/base"
  make_base_root "$base"
  root_kind="cold: throwaway debootstrap, no cache"
  archives="$work/archives"
  mkdir -p "$archives"
fi
mkdir -p "$work/upper" "$work/overlay-work" "$root"
mount -t overlay etcdhcp-deb-check \
  -o "lowerdir=$base/root,upperdir=$work/upper,workdir=$work/overlay-work" "$root"
mounts+=("$root")
mount --bind "$archives" "$root/var/cache/apt/archives"
mounts+=("$root/var/cache/apt/archives")
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
lap
say "bookworm root ($root_kind) in $lap"

# ---- 3. install with apt, and check what the package put there

cp "$deb" "$root/tmp/"
in_root apt-get install -y -q "/tmp/$(basename "$deb")" >"$work/apt.log" 2>&1 || {
  tail -n 30 "$work/apt.log" >&2
  fail "apt-get install ./$(basename "$deb") failed"
}
new=$(sed -n 's/^.* \([0-9]*\) newly installed.*/\1/p' "$work/apt.log")
in_root apt-get -q autoclean >/dev/null 2>&1 || true # keeps the .deb cache bounded
lap
say "apt-get install ./$(basename "$deb"): $new packages newly installed from Debian in $lap"
for pkg in etcdhcp python3-etcd3 python3-grpcio python3-protobuf etcd-server; do
  # shellcheck disable=SC2016 # dpkg-query's own ${Status}
  in_root dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -qx "install ok installed" ||
    fail "$pkg is not installed in the root"
done

got=$(in_root etcdhcp --version) || fail "etcdhcp --version failed"
[ "$got" = "etcdhcp $version" ] || fail "etcdhcp --version said '$got', expected 'etcdhcp $version'"
say "etcdhcp --version: $got"

if in_root test -x /usr/bin/etcdhcpctl; then
  in_root etcdhcpctl --help >"$work/etcdhcpctl-help.txt" 2>&1 || {
    cat "$work/etcdhcpctl-help.txt" >&2
    fail "etcdhcpctl --help failed"
  }
  say "etcdhcpctl --help: ok ($(head -n 1 "$work/etcdhcpctl-help.txt"))"
elif [ -e src/etcdhcp/ctl.py ]; then
  fail "src/etcdhcp/ctl.py exists but the package has no /usr/bin/etcdhcpctl"
else
  say "etcdhcpctl --help: not checked: this tree has no etcdhcpctl yet (src/etcdhcp/ctl.py)"
fi

cp "$root/lib/systemd/system/etcdhcp@.service" "$root/tmp/etcdhcp@eth0.service"
for unit in /lib/systemd/system/etcdhcp.service /tmp/etcdhcp@eth0.service; do
  in_root systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || {
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify $unit"
  }
  if [ -s "$work/verify.log" ]; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify $unit warned"
  fi
  say "systemd-analyze verify $unit: ok"
done
state=$(in_root systemctl is-enabled etcdhcp.service 2>&1) || true
[ "$state" = disabled ] || fail "etcdhcp.service is '$state' after install, expected disabled"
if compgen -G "$root/etc/systemd/system/*.wants/etcdhcp*" >/dev/null; then
  fail "install enabled an etcdhcp unit"
fi
say "etcdhcp.service after install: disabled, not started"

user=$(in_root getent passwd etcdhcp) || fail "no user etcdhcp after install"
case $user in *:/var/lib/etcdhcp:/usr/sbin/nologin) ;; *) fail "user etcdhcp: $user" ;; esac
owner=$(in_root stat -c '%U:%G %a' /var/lib/etcdhcp)
[ "$owner" = "etcdhcp:etcdhcp 750" ] || fail "/var/lib/etcdhcp is $owner"
for f in /etc/etcdhcp/etcdhcp.conf /etc/default/etcdhcp; do
  in_root dpkg-query --control-show etcdhcp conffiles | grep -q "^$f$" || fail "$f is no conffile"
done
in_root man -w etcdhcp etcdhcpctl >/dev/null || fail "man pages etcdhcp(8), etcdhcpctl(8) missing"
say "user etcdhcp ($user), /var/lib/etcdhcp $owner, conffiles and man pages: ok"

# check_purged: what the package created is gone; an operator's own files stay.
check_purged() {
  if in_root getent passwd etcdhcp >/dev/null || in_root getent group etcdhcp >/dev/null; then
    fail "purge left the user or group etcdhcp"
  fi
  for f in /var/lib/etcdhcp /etc/etcdhcp/etcdhcp.conf /etc/default/etcdhcp /usr/bin/etcdhcp \
    /usr/bin/etcdhcpctl /lib/systemd/system/etcdhcp.service /lib/systemd/system/etcdhcp@.service; do
    if [ -e "$root$f" ]; then fail "purge left $f"; fi
  done
}
# Offline (no systemd running): purge; the package comes back under systemd below.
in_root dpkg --purge etcdhcp >"$work/purge.log" 2>&1 || {
  cat "$work/purge.log" >&2
  fail "dpkg --purge etcdhcp failed"
}
check_purged
lap
say "dpkg --purge etcdhcp (offline): user, group, /var/lib/etcdhcp, conffiles, units gone in $lap"


# ---- 4. under systemd: install, start, serve a real dhclient, reload, upgrade, purge

mkdir -p /run/etcdhcp-lab
echo "$$ $(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f20)" >"$owner_record"
for ns in "$server_ns" "$client_ns"; do
  ip netns add "$ns"
  namespaces+=("$ns")
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
ip -n "$client_ns" link add eth0 type veth peer name "$SERVER_IF" netns "$server_ns"
ip -n "$server_ns" addr add 198.18.0.1/24 dev "$SERVER_IF"
ip -n "$server_ns" link set "$SERVER_IF" up
ip -n "$client_ns" link set eth0 up
mkdir -p "/etc/netns/$client_ns" # dhclient-script rewrites resolv.conf: give it one
echo "# deb-check client $client_ns" >"/etc/netns/$client_ns/resolv.conf"

# Boot the root with systemd as PID 1, sharing the server's network namespace (entered
# with nsenter, so the container's /sys shows that namespace's interfaces).
cp "$deb" "$root/root/"
rm "$root/usr/sbin/policy-rc.d" # a booted system: package scripts may start services
nsenter --net="/run/netns/$server_ns" systemd-nspawn --quiet --boot --register=no \
  --keep-unit --console=passive --machine="deb-check-$id" -D "$root" >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
leader="" # the container's PID 1, once it runs systemd
for _ in $(seq 300); do
  leader=$(pgrep -P "$nspawn_pid" -x systemd || true)
  [ -n "$leader" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$leader" ] || {
  cat "$work/nspawn.log" >&2
  fail "systemd-nspawn did not boot the root"
}
in_container() { # CMD...: run CMD inside the booted root, bounded in time
  timeout 120 nsenter -t "$leader" -a "${CLEAN_ENV[@]}" "$@"
}
booted=""
for _ in $(seq 120); do # until systemd listens; then --wait for the boot to finish
  booted=$(in_container systemctl is-system-running --wait 2>/dev/null) || true
  case $booted in "" | offline) sleep 0.5 ;; *) break ;; esac
done
case $booted in running | degraded) ;; *)
  cat "$work/nspawn.log" >&2
  fail "systemd in the root: '$booted'"
  ;;
esac
main_pid() { in_container systemctl show -p MainPID --value "$1"; }
lap
say "booted the root with systemd in network namespace $server_ns (state: $booted) in $lap"

# A fresh install while systemd runs: nothing may be enabled or started.
in_container dpkg -i "/root/$(basename "$deb")" >"$work/dpkg-i.log" 2>&1 || {
  cat "$work/dpkg-i.log" >&2
  fail "dpkg -i under systemd failed"
}
enabled=$(in_container systemctl is-enabled etcdhcp.service) || true
active=$(in_container systemctl is-active etcdhcp.service) || true
[ "$enabled/$active" = disabled/inactive ] ||
  fail "etcdhcp.service is $enabled/$active after installing under systemd"
say "installed under systemd: etcdhcp.service $enabled, $active"

# What an operator does next: edit the packaged conffile, then start the service. No
# etcd endpoint: the daemon runs its embedded etcd, data in /var/lib/etcdhcp/etcd.
# Two processes pinned to (up to) two CPUs, named, so the pinning is checked on any host.
cpus=$(python3 -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0))[:2])))')
serving_config="dhcp.cpu-affinity = $cpus
dhcp.server-ip = 198.18.0.1
dhcp.subnet-mask = 255.255.255.0
dhcp.router = 198.18.0.1
dhcp.dns = 198.18.0.1
dhcp.issue-from = 198.18.0.10
dhcp.issue-to = 198.18.0.20
dhcp.processes = 2
admin-addr = 127.0.0.1:9842"
printf '\n# deb-check\ndhcp.server-if = %s\n%s\n' "$SERVER_IF" "$serving_config" \
  >>"$root/etc/etcdhcp/etcdhcp.conf"
# Type=notify: start returns once the daemon said READY=1.
in_container systemctl start etcdhcp.service || {
  in_container journalctl -u etcdhcp.service --no-pager >&2
  fail "systemctl start etcdhcp.service failed"
}
pid=$(main_pid etcdhcp.service)
identity=$(in_container grep -E '^(Uid|CapEff):' "/proc/$pid/status" | tr -s '\t ' ' ' | tr '\n' ' ')
in_container journalctl -u etcdhcp.service --no-pager >"$work/journal.log"
grep -q "starting embedded etcd on http://127.0.0.1:2479 (data in /var/lib/etcdhcp/etcd)" \
  "$work/journal.log" || fail "etcdhcp.service did not start its embedded etcd"
grep -q "serving process 1 (pid [0-9]*) serves" "$work/journal.log" &&
  grep -q "from 2 processes" "$work/journal.log" ||
  fail "etcdhcp.service did not start its second serving process (dhcp.processes = 2)"
if grep -q "but reception only permitted for main PID" "$work/journal.log"; then
  fail "a serving process other than the main one sent systemd notifications"
fi
for index in 0 1; do # the unit's system call filter lets them pin themselves
  grep -q "serving process $index (pid [0-9]*) runs on CPU [0-9]" "$work/journal.log" ||
    fail "serving process $index did not pin itself to a CPU (dhcp.cpu-affinity = $cpus)"
done
lap
say "systemctl start etcdhcp.service: active, main PID $identity in $lap"
say "dhcp.processes = 2: a second serving process started, and stayed quiet to systemd"
say "dhcp.cpu-affinity = $cpus: both serving processes pinned themselves"
exposure=$(in_container systemd-analyze security etcdhcp.service --no-pager 2>&1 |
  sed -n 's/.*Overall exposure level for etcdhcp.service: \([0-9.]*\).*/\1/p')
say "systemd-analyze security etcdhcp.service: exposure $exposure"

printf 'timeout 20;\nrequest subnet-mask, routers, domain-name-servers;\n' >"$work/dhclient.conf"
dhclient_files=(-cf "$work/dhclient.conf" -lf "$work/dhclient.leases" -pf "$work/dhclient.pid")
timeout 60 ip netns exec "$client_ns" unshare --uts \
  dhclient -1 -v "${dhclient_files[@]}" eth0 >"$work/dhclient.log" 2>&1 || {
  cat "$work/dhclient.log" >&2
  in_container journalctl -u etcdhcp.service --no-pager >&2
  fail "dhclient got no lease from the installed etcdhcp"
}
address=$(ip -n "$client_ns" -4 -o addr show dev eth0 | sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p')
mac=$(ip -n "$client_ns" -o link show dev eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\) .*/\1/p')
etcdctl_in_server() {
  env -i PATH=$SAFE_PATH ETCDCTL_API=3 timeout 30 \
    ip netns exec "$server_ns" etcdctl --endpoints 127.0.0.1:2479 "$@"
}
leased=$(etcdctl_in_server get --print-value-only "etcdhcp::nics::leased::$mac")
case $address in 198.18.0.1[0-9] | 198.18.0.20) ;; *) fail "dhclient's address: '$address'" ;; esac
[ "$leased" = "$address" ] || fail "etcd says $mac has '$leased', dhclient says '$address'"
lap
say "dhclient got $address for $mac from etcdhcp.service; etcd agrees, in $lap"
if in_container test -x /usr/bin/etcdhcpctl; then
  # The operator's view, through the same config file the daemon read.
  shown=$(in_container etcdhcpctl lease show "$mac" --json) ||
    fail "etcdhcpctl lease show $mac failed"
  case $shown in *"\"ip\": \"$address\""*) ;; *) fail "etcdhcpctl lease show $mac: $shown" ;; esac
  say "etcdhcpctl lease show $mac: $address"
fi
timeout 60 ip netns exec "$client_ns" unshare --uts \
  dhclient -r -v "${dhclient_files[@]}" eth0 >>"$work/dhclient.log" 2>&1 ||
  fail "dhclient -r failed"
for _ in $(seq 50); do
  [ "$(etcdctl_in_server get --print-value-only "etcdhcp::ips::free::$address")" = "$address" ] &&
    break
  sleep 0.2
done
[ "$(etcdctl_in_server get --print-value-only "etcdhcp::ips::free::$address")" = "$address" ] ||
  fail "$address is not free again after dhclient -r"
say "dhclient -r: $address is free again"

# Reload: SIGHUP, and the daemon's one line about it.
in_container systemctl reload etcdhcp.service || fail "systemctl reload etcdhcp.service failed"
for _ in $(seq 50); do
  in_container journalctl -u etcdhcp.service --no-pager | grep -q "SIGHUP: configuration re-read" &&
    break
  sleep 0.2
done
in_container journalctl -u etcdhcp.service --no-pager | grep -q "SIGHUP: configuration re-read" ||
  fail "systemctl reload: no 'SIGHUP: configuration re-read' in the journal"
[ "$(main_pid etcdhcp.service)" = "$pid" ] || fail "systemctl reload restarted etcdhcp.service"
say "systemctl reload etcdhcp.service: configuration re-read, same main PID"

# An upgrade (the same .deb again) restarts what runs, so it runs the new code.
in_container dpkg -i "/root/$(basename "$deb")" >"$work/dpkg-upgrade.log" 2>&1 || {
  cat "$work/dpkg-upgrade.log" >&2
  fail "dpkg -i over the installed package failed"
}
upgraded_pid=$(main_pid etcdhcp.service)
if [ "$(in_container systemctl is-active etcdhcp.service)" != active ] ||
  [ "$upgraded_pid" = "$pid" ]; then
  fail "the upgrade did not restart etcdhcp.service (main PID $pid -> $upgraded_pid)"
fi
say "upgrade under systemd: etcdhcp.service restarted (main PID $pid -> $upgraded_pid)"

in_container systemctl stop etcdhcp.service
stopped=$(in_container systemctl show -p Result -p ExecMainStatus --value etcdhcp.service | tr '\n' ' ')
[ "$stopped" = "success 0 " ] || fail "systemctl stop etcdhcp.service: result/status $stopped"
data_owner=$(in_root stat -c %U /var/lib/etcdhcp/etcd/member 2>/dev/null) || true
[ "$data_owner" = etcdhcp ] ||
  fail "the embedded etcd's data is not in /var/lib/etcdhcp/etcd, owned by etcdhcp"
say "systemctl stop etcdhcp.service: exit status 0; etcd data in /var/lib/etcdhcp/etcd"

# One instance per interface: /etc/etcdhcp/IFACE.conf, state in /var/lib/etcdhcp/IFACE.
printf '%s\n' "$serving_config" >"$root/etc/etcdhcp/$SERVER_IF.conf"
in_container systemctl start "etcdhcp@$SERVER_IF.service" || {
  in_container journalctl -u "etcdhcp@$SERVER_IF.service" --no-pager >&2
  fail "systemctl start etcdhcp@$SERVER_IF.service failed"
}
[ -d "$root/var/lib/etcdhcp/$SERVER_IF/etcd/member" ] ||
  fail "etcdhcp@$SERVER_IF.service keeps no state in /var/lib/etcdhcp/$SERVER_IF"
lap
say "systemctl start etcdhcp@$SERVER_IF.service: active, state in /var/lib/etcdhcp/$SERVER_IF in $lap"

# Purge while that instance runs: it is stopped, and what the package made is gone.
in_container apt-get purge -y -q etcdhcp >"$work/purge.log" 2>&1 || {
  cat "$work/purge.log" >&2
  fail "apt-get purge etcdhcp under systemd failed"
}
if in_container pgrep -f '^/usr/bin/python3 /usr/bin/etcdhcp' >/dev/null; then
  fail "an etcdhcp process outlived the purge"
fi
check_purged
[ -f "$root/etc/etcdhcp/$SERVER_IF.conf" ] || fail "purge removed the operator's own config"
lap
say "apt-get purge etcdhcp under systemd: instances stopped; package files, user, state gone;" \
  "the operator's /etc/etcdhcp/$SERVER_IF.conf kept, in $lap"

kill -TERM "$nspawn_pid" # poweroff
for _ in $(seq 150); do
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.2
done
if kill -0 "$nspawn_pid" 2>/dev/null; then fail "the container did not power off within 30s"; fi
nspawn_pid=""
lap
say "powered off in $lap"
say "OK: etcdhcp $version installs, serves and purges on a clean Debian 12 in $((SECONDS - started))s"
