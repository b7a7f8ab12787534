#!/usr/bin/env bash
# Install a single-node SLURM (Debian's slurm-wlm + munge) when it is missing. Idempotent; needs root.
# Used by `make test-slurm` (and by any other test that needs a cluster: see .ci/slurm/README.md).
set -euo pipefail

if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sbatch >/dev/null && command -v squeue >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: SLURM is not installed and installing it needs root (apt-get install slurm-wlm munge)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run (a shared machine) instead of failing on its lock.
APT=(apt-get -o DPkg::Lock::Timeout=600)
"${APT[@]}" update -qq
# slurm-wlm pulls slurmctld, slurmd and the client commands (sbatch, squeue, scancel, sinfo).
"${APT[@]}" install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
command -v slurmctld >/dev/null && command -v munged >/dev/null
