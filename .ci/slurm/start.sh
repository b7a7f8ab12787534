#!/usr/bin/env bash
# Start a single-node SLURM on this machine (munged, slurmctld, slurmd) and wait until its node is idle.
# Idempotent: daemons already running are left alone, and only daemons this script started are recorded for
# stop.sh. Any test that needs a cluster (marked `slurm`, run by `make test-slurm`) can rely on it:
#   .ci/slurm/install.sh && .ci/slurm/start.sh     # partition: $TILEPROBE_SLURM_PARTITION (default: debug)
#   ... sbatch / snakemake --profile profiles/slurm / dask-jobqueue ...
#   .ci/slurm/stop.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PARTITION="${TILEPROBE_SLURM_PARTITION:-debug}"
CONF=/etc/slurm/slurm.conf
STARTED=/run/tileprobe-slurm.started
MARK="written by .ci/slurm/start.sh"

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! command -v slurmctld >/dev/null; then
    echo "start.sh: SLURM is not installed; run .ci/slurm/install.sh first" >&2
    exit 1
fi

# munge: one key shared by controller and node (both are this machine).
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
if ! running /run/munge/munged.pid; then
    runuser -u munge -- /usr/sbin/munged
    echo munged >> "$STARTED"
fi

# slurm.conf from the template, unless the machine has a slurm.conf of its own.
if [ ! -e "$CONF" ] || grep -q "$MARK" "$CONF"; then
    node="$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+/NodeName=localhost/')"
    install -d /etc/slurm
    sed -e "s|@NODE@|$node|" -e "s|@PARTITION@|$PARTITION|" "$HERE/slurm.conf.in" > "$CONF.new"
    mv "$CONF.new" "$CONF"
fi
install -d /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm

if ! running /run/slurmctld.pid; then
    slurmctld
    echo slurmctld >> "$STARTED"
fi
if ! running /run/slurmd.pid; then
    slurmd -N localhost
    echo slurmd >> "$STARTED"
fi

# Wait for the node; a node left down or drained by an earlier run is resumed.
for _ in $(seq 60); do
    state="$(sinfo -h -n localhost -o %T 2>/dev/null | head -n 1 || true)"
    case "$state" in
        idle|mixed|allocated) echo "SLURM is up: partition $PARTITION, node localhost $state"; exit 0 ;;
        down*|drain*|fail*) scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
    esac
    sleep 1
done
echo "start.sh: the SLURM node did not become idle in 60 s; see /var/log/slurm/*.log" >&2
sinfo -N -l >&2 || true
exit 1
