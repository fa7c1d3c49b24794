#!/usr/bin/env bash
# Real OpenStack APIs on one machine, for tests: one Keystone serving RegionOne and RegionTwo, and per
# region a Cinder stack (API, scheduler, volume with the real RBD driver on its own Ceph cluster) and a
# Nova stack (API, conductor, scheduler, compute with the fake virt driver, Placement). RabbitMQ (one
# vhost per region) and a network stub (fake-neutron.py) are shared. Debian's packages, no systemd.
#
#   scripts/openstack-lab/openstack-lab.sh start DIR [BASE_PORT [CEPH_PORT1 CEPH_PORT2]]
#   scripts/openstack-lab/openstack-lab.sh stop DIR
#
# start writes DIR/clouds.yaml (cloud `lab`, regions RegionOne and RegionTwo, admin password auth),
# DIR/secure.yaml, DIR/lab.env (ceph confs of both regions) and logs to DIR/log. Ports: BASE_PORT
# (default 15000) keystone, +1 network stub, +10..12 RegionOne cinder/nova/placement, +20..22 RegionTwo,
# +30..32 rabbitmq node/dist/epmd. Facts and traps: ../shared/reference/openstack-on-one-machine.md.
# Packages: keystone cinder-api cinder-scheduler cinder-volume rabbitmq-server nova-api nova-conductor
# nova-scheduler placement-api python3-nova (see .ci/run), plus Ceph as for the Ceph suites.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || { echo "usage: $0 start|stop DIR [BASE_PORT [CEPH_PORT1 CEPH_PORT2]]" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
PY=/usr/bin/python3

stop_all() {
  if [ -d "$dir/pids" ]; then
    for f in "$dir"/pids/*.pid; do [ -e "$f" ] && kill -TERM -- "-$(cat "$f")" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
      alive=0
      for f in "$dir"/pids/*.pid; do [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break
      sleep 0.1
    done
    for f in "$dir"/pids/*.pid; do [ -e "$f" ] && kill -KILL -- "-$(cat "$f")" 2>/dev/null || true; done
    rm -f "$dir"/pids/*.pid
  fi
  for c in osone ostwo; do
    SNAPFERRY_CEPH_DIR=$dir/ceph bash "$repo/scripts/ceph-dev-cluster.sh" stop "$c" 2>/dev/null || true
  done
}

if [ "$cmd" = stop ]; then stop_all; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR ..." >&2; exit 2; }

base=${3:-15000}
ceph1=${4:-7600}
ceph2=${5:-7700}
for b in keystone-manage cinder-api nova-api placement-manage uwsgi /usr/lib/rabbitmq/bin/rabbitmq-server; do
  command -v "$b" >/dev/null || { echo "openstack-lab: $b not found: apt-get install keystone cinder-api cinder-scheduler cinder-volume rabbitmq-server nova-api nova-conductor nova-scheduler placement-api python3-nova" >&2; exit 3; }
done

stop_all
rm -rf "$dir"/{keystone,rabbit,r1,r2,log,pids,ceph}
mkdir -p "$dir"/{keystone,rabbit,r1,r2,log,pids}
t0=$(date +%s)
step() { echo "openstack-lab: $(( $(date +%s) - t0 )) s: $*" >&2; }

ADMIN_PASSWORD=${LAB_ADMIN_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
SERVICE_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export LAB_ADMIN_PASSWORD=$ADMIN_PASSWORD LAB_SERVICE_PASSWORD=$SERVICE_PASSWORD
p_keystone=$base p_neutron=$((base + 1))
p_r1_cinder=$((base + 10)) p_r1_nova=$((base + 11)) p_r1_placement=$((base + 12))
p_r2_cinder=$((base + 20)) p_r2_nova=$((base + 21)) p_r2_placement=$((base + 22))
p_rabbit=$((base + 30)) p_dist=$((base + 31)) p_epmd=$((base + 32))
export LAB_PORTS_JSON="{\"keystone\":$p_keystone,\"neutron\":$p_neutron,\"r1_cinder\":$p_r1_cinder,\"r1_nova\":$p_r1_nova,\"r1_placement\":$p_r1_placement,\"r2_cinder\":$p_r2_cinder,\"r2_nova\":$p_r2_nova,\"r2_placement\":$p_r2_placement}"
keystone_url=http://127.0.0.1:$p_keystone/v3

# spawn NAME CMD...: a daemon in its own process group, output to DIR/log/NAME.out
spawn() {
  local name=$1; shift
  setsid "$@" >"$dir/log/$name.out" 2>&1 </dev/null &
  echo $! >"$dir/pids/$name.pid"
}
wait_for() { # seconds, what, command...
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "openstack-lab: timed out after $secs s waiting for $what (logs in $dir/log)" >&2
  return 1
}
# sqlite stands in for MariaDB: WAL (gotcha 1), and writers wait up to 60 s for a lock instead of
# sqlite's default 5 s — under load cinder-api's quota reservations otherwise fail with "database is
# locked" (HTTP 500), seen in CI.
SQLITE_OPTS='?timeout=60'
wal() { $PY -c 'import sqlite3,sys; [sqlite3.connect(f).execute("PRAGMA journal_mode=WAL") for f in sys.argv[1:]]' "$@"; }

# --- Ceph: one cluster per region, each with the `volumes` pool Cinder's RBD driver uses ---------------
start_ceph() { # name port
  local conf
  conf=$(SNAPFERRY_CEPH_DIR=$dir/ceph bash "$repo/scripts/ceph-dev-cluster.sh" start "$1" "$2")
  ceph -c "$conf" osd pool create volumes 8 8 replicated >/dev/null 2>&1
  rbd -c "$conf" pool init volumes
  echo "$conf"
}
start_ceph osone "$ceph1" >"$dir/r1/ceph-conf" 2>"$dir/log/ceph-r1.out" &
ceph_r1_job=$!
start_ceph ostwo "$ceph2" >"$dir/r2/ceph-conf" 2>"$dir/log/ceph-r2.out" &
ceph_r2_job=$!

# --- RabbitMQ by hand (gotcha 12) ----------------------------------------------------------------------
rabbit_vars=(HOME="$dir/rabbit" RABBITMQ_MNESIA_BASE="$dir/rabbit/mnesia" RABBITMQ_LOG_BASE="$dir/log"
  RABBITMQ_CONFIG_FILE="$dir/rabbit/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/rabbit/enabled_plugins"
  RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$p_rabbit
  RABBITMQ_DIST_PORT=$p_dist ERL_EPMD_PORT=$p_epmd ERL_EPMD_ADDRESS=127.0.0.1
  "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none")
rabbit_env() { env "${rabbit_vars[@]}" "$@"; }
echo '[].' >"$dir/rabbit/enabled_plugins"
echo "log.console = false" >"$dir/rabbit/rabbitmq.conf"
spawn epmd epmd -address 127.0.0.1 -port "$p_epmd"
spawn rabbitmq env "${rabbit_vars[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server

# --- Keystone (gotchas 1, 2) ----------------------------------------------------------------------------
k=$dir/keystone
cat >"$k/keystone.conf" <<CONF
[DEFAULT]
log_file = $dir/log/keystone.log
[database]
connection = sqlite:///$k/keystone.db$SQLITE_OPTS
sqlite_synchronous = false
[token]
provider = fernet
[fernet_tokens]
key_repository = $k/fernet-keys
[fernet_receipts]
key_repository = $k/fernet-receipts
[credential]
key_repository = $k/credential-keys
[cache]
enabled = true
backend = dogpile.cache.memory
[identity]
password_hash_rounds = 4
CONF
km() { keystone-manage --config-file "$k/keystone.conf" "$@" >>"$dir/log/keystone-manage.out" 2>&1; }
km db_sync
wal "$k/keystone.db"
km fernet_setup --keystone-user root --keystone-group root
km fernet_receipts_setup --keystone-user root --keystone-group root 2>/dev/null || true
km credential_setup --keystone-user root --keystone-group root
km bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-admin-url "$keystone_url" \
  --bootstrap-internal-url "$keystone_url" --bootstrap-public-url "$keystone_url" --bootstrap-region-id RegionOne
cat >"$k/uwsgi.ini" <<CONF
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:$p_keystone
wsgi-file = /usr/bin/keystone-wsgi-public
env = OS_KEYSTONE_CONFIG_FILES=$k/keystone.conf
add-header = Connection: close
processes = 1
threads = 4
die-on-term = true
CONF
spawn keystone uwsgi --ini "$k/uwsgi.ini"
spawn fake-neutron $PY "$here/fake-neutron.py" "$p_neutron"
wait_for 60 "keystone" $PY -c "import urllib.request; urllib.request.urlopen('$keystone_url', timeout=2)"
step "keystone up"
$PY "$here/lab-api.py" register
step "services and endpoints registered"

wait_for 90 "rabbitmq" rabbit_env /usr/lib/rabbitmq/bin/rabbitmqctl -n rabbit@localhost -q await_startup
for v in r1 r2; do
  rabbit_env /usr/lib/rabbitmq/bin/rabbitmqctl -n rabbit@localhost -q add_vhost "$v" >/dev/null
  rabbit_env /usr/lib/rabbitmq/bin/rabbitmqctl -n rabbit@localhost -q set_permissions -p "$v" guest '.*' '.*' '.*' >/dev/null
done
step "rabbitmq up"
wait "$ceph_r1_job" || { cat "$dir/log/ceph-r1.out" >&2; exit 1; }
wait "$ceph_r2_job" || { cat "$dir/log/ceph-r2.out" >&2; exit 1; }
step "ceph clusters up"

auth_section() { # section user region
  cat <<CONF
[$1]
auth_type = password
auth_url = $keystone_url
www_authenticate_uri = $keystone_url
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $SERVICE_PASSWORD
region_name = $3
CONF
}

region_conf() { # short region ceph-conf cinder-port nova-port placement-port host
  local r=$1 region=$2 conf=$3 pc=$4 pn=$5 pp=$6 host=$7
  local d=$dir/$r
  mkdir -p "$d"/{cinder,nova,placement,lock,instances}
  {
    cat <<CONF
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:$p_rabbit/$r
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $pc
osapi_volume_workers = 1
api_paste_config = /etc/cinder/api-paste.ini
enabled_backends = rbd
auth_strategy = keystone
state_path = $d/cinder
host = cinder-$r
log_file = $dir/log/cinder-$r.log
storage_availability_zone = nova
default_availability_zone = nova
quota_volumes = -1
quota_gigabytes = -1
quota_snapshots = -1
[database]
connection = sqlite:///$d/cinder.db$SQLITE_OPTS
sqlite_synchronous = false
[oslo_concurrency]
lock_path = $d/lock
[rbd]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = rbd
rbd_pool = volumes
rbd_ceph_conf = $conf
rbd_user = admin
CONF
    auth_section keystone_authtoken cinder "$region"
    echo "service_token_roles_required = true"
  } >"$d/cinder.conf"
  {
    cat <<CONF
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:$p_rabbit/$r
compute_driver = fake.FakeDriver
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = $pn
osapi_compute_workers = 1
state_path = $d/nova
instances_path = $d/instances
host = $host
my_ip = 127.0.0.1
periodic_fuzzy_delay = 0
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
log_file = $dir/log/nova-$r.log
[api]
auth_strategy = keystone
[quota]
instances = -1
cores = -1
ram = -1
[api_database]
connection = sqlite:///$d/nova_api.db$SQLITE_OPTS
sqlite_synchronous = false
[database]
connection = sqlite:///$d/nova.db$SQLITE_OPTS
sqlite_synchronous = false
[conductor]
workers = 1
[scheduler]
workers = 1
[oslo_concurrency]
lock_path = $d/lock
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[glance]
# No image service here; nova only builds image URLs for notifications from it (never called when
# servers boot from volumes). Without it, builds fail with "endpoint for image service not found".
api_servers = http://127.0.0.1:$p_neutron
[cinder]
os_region_name = $region
CONF
    auth_section keystone_authtoken nova "$region"
    auth_section placement nova "$region"
    auth_section neutron nova "$region"
    auth_section service_user nova "$region"
    echo "send_service_user_token = true"
  } >"$d/nova.conf"
  # [cinder] takes auth too: append to the section written above
  $PY - "$d/nova.conf" "$keystone_url" "$SERVICE_PASSWORD" <<'PYEOF'
import sys
path, url, pw = sys.argv[1:]
text = open(path).read()
extra = (f"auth_type = password\nauth_url = {url}\nproject_domain_name = Default\nuser_domain_name = Default\n"
         f"project_name = service\nusername = nova\npassword = {pw}\n")
open(path, "w").write(text.replace("[cinder]\n", "[cinder]\n" + extra, 1))
PYEOF
  {
    cat <<CONF
[placement_database]
connection = sqlite:///$d/placement.db$SQLITE_OPTS
sqlite_synchronous = false
[api]
auth_strategy = keystone
CONF
    auth_section keystone_authtoken placement "$region"
  } >"$d/placement/placement.conf"
  cat >"$d/placement/uwsgi.ini" <<CONF
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:$pp
wsgi-file = /usr/bin/placement-api
env = OS_PLACEMENT_CONFIG_DIR=$d/placement
add-header = Connection: close
processes = 1
threads = 4
die-on-term = true
CONF
}
region_conf r1 RegionOne "$(cat "$dir/r1/ceph-conf")" $p_r1_cinder $p_r1_nova $p_r1_placement compute1
region_conf r2 RegionTwo "$(cat "$dir/r2/ceph-conf")" $p_r2_cinder $p_r2_nova $p_r2_placement compute2

db_sync() { # short
  local d=$dir/$1 log=$dir/log/dbsync-$1.out
  {
    cinder-manage --config-file "$d/cinder.conf" db sync
    placement-manage --config-dir "$d/placement" db sync
    nova-manage --config-file "$d/nova.conf" api_db sync
    nova-manage --config-file "$d/nova.conf" cell_v2 map_cell0 --database_connection "sqlite:///$d/nova_cell0.db$SQLITE_OPTS"
    nova-manage --config-file "$d/nova.conf" cell_v2 create_cell --name cell1 --verbose
    nova-manage --config-file "$d/nova.conf" db sync
    wal "$d/cinder.db" "$d/placement.db" "$d/nova_api.db" "$d/nova_cell0.db" "$d/nova.db"
  } >"$log" 2>&1 || { echo "openstack-lab: database setup of $1 failed:" >&2; tail -20 "$log" >&2; return 1; }
}
db_sync r1 & j1=$!
db_sync r2 & j2=$!
wait $j1
wait $j2
step "databases ready"

for r in r1 r2; do
  d=$dir/$r
  spawn "cinder-api-$r" cinder-api --config-file "$d/cinder.conf"
  spawn "cinder-scheduler-$r" cinder-scheduler --config-file "$d/cinder.conf"
  spawn "cinder-volume-$r" cinder-volume --config-file "$d/cinder.conf"
  spawn "placement-$r" uwsgi --ini "$d/placement/uwsgi.ini"
  spawn "nova-api-$r" nova-api --config-file "$d/nova.conf"
  spawn "nova-conductor-$r" nova-conductor --config-file "$d/nova.conf"
  spawn "nova-scheduler-$r" nova-scheduler --config-file "$d/nova.conf"
  # The Debian nova-compute package pulls in libvirt (gotcha 11): run it from python3-nova.
  spawn "nova-compute-$r" $PY -c 'import sys; from nova.cmd.compute import main; sys.argv[0] = "nova-compute"; main()' --config-file "$d/nova.conf"
done

discover() { # short host
  nova-manage --config-file "$dir/$1/nova.conf" cell_v2 discover_hosts >/dev/null 2>&1
  nova-manage --config-file "$dir/$1/nova.conf" cell_v2 list_hosts 2>/dev/null | grep -q "$2"
}
wait_for 240 "compute1 to register in RegionOne" discover r1 compute1
wait_for 240 "compute2 to register in RegionTwo" discover r2 compute2
$PY "$here/lab-api.py" wait-compute RegionOne 120
$PY "$here/lab-api.py" wait-compute RegionTwo 120
$PY "$here/lab-api.py" wait-volume RegionOne 120
$PY "$here/lab-api.py" wait-volume RegionTwo 120
$PY "$here/lab-api.py" flavor RegionOne
$PY "$here/lab-api.py" flavor RegionTwo
step "nova and cinder up in both regions"

cat >"$dir/clouds.yaml" <<CONF
# Written by scripts/openstack-lab/openstack-lab.sh; the password is in secure.yaml.
clouds:
  lab:
    auth:
      auth_url: $keystone_url
      username: admin
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    regions: [RegionOne, RegionTwo]
    interface: public
    identity_api_version: 3
CONF
cat >"$dir/secure.yaml" <<CONF
clouds:
  lab:
    auth:
      password: $ADMIN_PASSWORD
CONF
chmod 600 "$dir/secure.yaml"
cat >"$dir/lab.env" <<CONF
LAB_KEYSTONE_URL=$keystone_url
LAB_CEPH_CONF_RegionOne=$(cat "$dir/r1/ceph-conf")
LAB_CEPH_CONF_RegionTwo=$(cat "$dir/r2/ceph-conf")
CONF
step "ready: OS_CLIENT_CONFIG_FILE=$dir/clouds.yaml OS_CLOUD=lab"
