#!/usr/bin/env bash
# Stop the daemons that .ci/slurm/start.sh started (by their pid files), leaving any cluster it found running.
set -uo pipefail
STARTED=/run/tileprobe-slurm.started
[ -e "$STARTED" ] || exit 0

pidfile() {
    case "$1" in
        slurmd) echo /run/slurmd.pid ;;
        slurmctld) echo /run/slurmctld.pid ;;
        munged) echo /run/munge/munged.pid ;;
    esac
}

# Node first, controller next, munge last: each needs the ones after it to shut down cleanly.
for daemon in slurmd slurmctld munged; do
    grep -qx "$daemon" "$STARTED" || continue
    file="$(pidfile "$daemon")"
    [ -s "$file" ] || continue
    pid="$(cat "$file")"
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
done
rm -f "$STARTED"
echo "SLURM stopped"
