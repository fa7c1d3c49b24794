#!/usr/bin/env bash
# A real, independent one-mon one-OSD Ceph cluster on 127.0.0.1, for tests and benchmarks, without
# systemd. Two of them side by side are two "regions".
#
#   scripts/ceph-dev-cluster.sh start NAME PORT [memstore|bluestore]   prints the conf path
#   scripts/ceph-dev-cluster.sh stop NAME                              stops exactly what start started
#   scripts/ceph-dev-cluster.sh status NAME
#
# NAME: letters/digits; PORT: the mon's v2 port (v1 is PORT+1); the OSD binds PORT+10..PORT+99.
# Files live in ${SNAPFERRY_CEPH_DIR:-/tmp/snapferry-ceph}/NAME. memstore (default) is fast and small
# (it keeps every object version in RAM; 4 GiB device); bluestore uses a sparse file (for benchmarks).
# Needs Debian's ceph-mon ceph-osd ceph-common. Facts: ../shared/reference/ceph-on-one-machine.md.
set -euo pipefail

cmd=${1:-}
name=${2:-}
[[ "$name" =~ ^[A-Za-z0-9]+$ ]] || { echo "usage: $0 start|stop|status NAME [PORT [memstore|bluestore]]" >&2; exit 2; }
root=${SNAPFERRY_CEPH_DIR:-/tmp/snapferry-ceph}
dir=$root/$name
conf=$dir/ceph.conf

pids() { cat "$dir"/*.pid 2>/dev/null || true; }

stop() {
  for pid in $(pids); do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 200); do
    alive=0
    for pid in $(pids); do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in $(pids); do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$dir"/*.pid
}

wait_for() { # seconds, description, command...
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "ceph-dev-cluster $name: timed out waiting for $what (logs in $dir)" >&2
  return 1
}

case "$cmd" in
stop)
  stop
  ;;
status)
  for pid in $(pids); do kill -0 "$pid" 2>/dev/null && echo "running $pid" || echo "dead $pid"; done
  ;;
start)
  port=${3:?PORT required}
  store=${4:-memstore}
  [[ "$store" == memstore || "$store" == bluestore ]] || { echo "objectstore must be memstore or bluestore" >&2; exit 2; }
  command -v ceph-mon >/dev/null || { echo "ceph-mon not found: apt-get install ceph-mon ceph-osd ceph-common" >&2; exit 3; }
  [ -d "$dir" ] && stop
  rm -rf "$dir"
  mkdir -p "$dir"/mon "$dir"/osd "$dir"/run
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port,v1:127.0.0.1:$((port + 1))]
public addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind port min = $((port + 10))
ms bind port max = $((port + 99))
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/\$name.log
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
[mon]
mon data = $dir/mon/\$cluster-\$id
paxos propose interval = 0.1
[osd]
osd data = $dir/osd/\$cluster-\$id
keyring = \$osd_data/keyring
osd objectstore = $store
memstore device bytes = 4294967296
bluestore block path = $dir/osd-block
bluestore block size = 21474836480
bluestore block create = true
osd memory target = 939524096
[client]
keyring = $dir/admin.keyring
admin socket =
log file = $dir/client.log
CONF
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$dir/admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  chmod 600 "$dir/admin.keyring"
  ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/admin.keyring" >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port,v1:127.0.0.1:$((port + 1))]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
  ceph-mon -c "$conf" -f -i a >"$dir/mon.out" 2>&1 &
  echo $! >"$dir/mon.pid"
  wait_for 30 "the monitor" ceph -c "$conf" --connect-timeout 5 mon stat
  ceph -c "$conf" health mute MGR_DOWN --sticky >/dev/null 2>&1 || true
  uuid=$(cat /proc/sys/kernel/random/uuid)
  key=$(ceph-authtool --gen-print-key)
  id=$(echo "{\"cephx_secret\": \"$key\"}" | ceph -c "$conf" osd new "$uuid" -i -)
  mkdir -p "$dir/osd/ceph-$id"
  ceph-authtool --create-keyring "$dir/osd/ceph-$id/keyring" --name "osd.$id" --add-key "$key" >/dev/null
  ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" >"$dir/osd-mkfs.out" 2>&1
  # SNAPFERRY_CEPH_OSD_PRELOAD=LIB: the OSD runs with LD_PRELOAD=LIB (the downtime bench gives it
  # tcmalloc, which upstream Ceph builds link and Debian's ceph-osd does not: docs/BENCHMARKS.md).
  env ${SNAPFERRY_CEPH_OSD_PRELOAD:+LD_PRELOAD="$SNAPFERRY_CEPH_OSD_PRELOAD"} \
    ceph-osd -c "$conf" -f -i "$id" >"$dir/osd.out" 2>&1 &
  echo $! >"$dir/osd.pid"
  wait_for 60 "the OSD to come up" sh -c "ceph -c '$conf' osd dump -f json | grep -q '\"up\":1'"
  ceph -c "$conf" osd pool create rbd 8 8 replicated >/dev/null 2>&1
  rbd -c "$conf" pool init rbd
  wait_for 30 "the rbd pool" rbd -c "$conf" ls -p rbd
  echo "$conf"
  ;;
*)
  echo "usage: $0 start|stop|status NAME [PORT [memstore|bluestore]]" >&2
  exit 2
  ;;
esac
