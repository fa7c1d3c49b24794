#!/usr/bin/env bash
# The manual runbook operators run today ("VM live migration across the globe with Ceph and OpenStack",
# root314.com, 2017), with nothing but rbd and OpenSSH, run on the source host:
#   1. snapshot the live source image; 2. export-diff | ssh | import-diff onto a fresh image of the
#   same size; 3. ROUNDS times: snapshot, export-diff --from-snap previous | ssh | import-diff;
#   4. stop the workload (downtime starts); 5. final snapshot, export-diff | ssh | import-diff;
#   6. start on the destination (downtime ends).
#
# usage: manual-runbook.sh SRC_SPEC DST_HOST DST_SPEC ROUNDS
# env:   RBD_SRC  rbd arguments for the source cluster (e.g. "--conf /etc/ceph/a.conf")
#        RBD_DST  rbd arguments for the destination cluster, as seen on DST_HOST
#        SSH_OPTS OpenSSH options (e.g. "-i key -o UserKnownHostsFile=kh")
#        STOP_CMD command that stops the workload and returns when it has stopped
#        START_CMD command that starts the workload on the destination
#        WARM_UNTIL optional epoch second after which no new warm round starts (an operator's time budget:
#                 the round in progress finishes, then the cutover follows with the rounds done so far)
# Prints one line per step on stdout: STEP NAME START_EPOCH END_EPOCH (seconds, ns resolution).
set -euo pipefail

src=$1 dst_host=$2 dst=$3 rounds=$4
for name in "$src" "$dst"; do
  [[ "$name" =~ ^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$ ]] || { echo "bad image spec: $name" >&2; exit 2; }
done
[[ "$rounds" =~ ^[0-9]+$ ]] || { echo "bad round count: $rounds" >&2; exit 2; }
[[ "${WARM_UNTIL:-0}" =~ ^[0-9]+$ ]] || { echo "bad WARM_UNTIL: $WARM_UNTIL" >&2; exit 2; }
read -r -a rbd_src <<<"${RBD_SRC:-}"
read -r -a ssh_opts <<<"${SSH_OPTS:-}"
remote_rbd="rbd ${RBD_DST:-}"

now() { date +%s.%N; }
step() { # NAME command...
  local name=$1 t0 t1
  shift
  t0=$(now)
  "$@"
  t1=$(now)
  echo "STEP $name $t0 $t1"
}
ship() { # FROM_SNAP_OR_EMPTY TO_SNAP
  local from=()
  [ -n "$1" ] && from=(--from-snap "$1")
  rbd "${rbd_src[@]}" export-diff --no-progress "${from[@]}" "$src@$2" - |
    ssh "${ssh_opts[@]}" "$dst_host" "$remote_rbd import-diff --no-progress - $(printf %q "$dst")"
}

size=$(rbd "${rbd_src[@]}" info --format json "$src" | sed -E 's/.*"size":([0-9]+).*/\1/')
step create-destination ssh "${ssh_opts[@]}" "$dst_host" "$remote_rbd create --size ${size}B $(printf %q "$dst")"
step snapshot-0 rbd "${rbd_src[@]}" snap create "$src@manual-0"
step round-0 ship "" manual-0
done_rounds=0
for ((i = 1; i <= rounds; i++)); do
  if [ -n "${WARM_UNTIL:-}" ] && [ "$(date +%s)" -ge "$WARM_UNTIL" ]; then break; fi
  step "snapshot-$i" rbd "${rbd_src[@]}" snap create "$src@manual-$i"
  step "round-$i" ship "manual-$((i - 1))" "manual-$i"
  done_rounds=$i
done
step stop-workload bash -c "$STOP_CMD"
final=$((done_rounds + 1))
step "snapshot-$final" rbd "${rbd_src[@]}" snap create "$src@manual-$final"
step "round-$final" ship "manual-$done_rounds" "manual-$final"
step start-destination bash -c "$START_CMD"
