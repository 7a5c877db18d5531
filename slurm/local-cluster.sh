#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests and CI.
#
#   slurm/local-cluster.sh start    install (Debian: slurm-wlm, munge) if needed, configure, start
#   slurm/local-cluster.sh status   exit 0 when sbatch/srun can be used
#   slurm/local-cluster.sh stop     stop the daemons this script started
#
# Runs as root (as in CI containers). Everything it writes lives under $HPCRAY_SLURM_DIR
# (default /tmp/hpcray-slurm) except the munge key, which munged wants in /etc/munge.
set -euo pipefail

DIR=${HPCRAY_SLURM_DIR:-/tmp/hpcray-slurm}
CONF=/etc/slurm/slurm.conf

log() { echo "[local-cluster] $*"; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        return
    fi
    log "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_config() {
    mkdir -p "$DIR"/{state,spool,log} /etc/slurm /run/munge /var/log/munge /var/lib/munge
    local host cpus
    host=$(hostname)
    # The node advertises at least 16 CPUs (config_overrides lets slurmd accept more than the
    # machine has), so that jobs of 4-16 ranks run on a 2-core test machine as they would on a
    # real node; MPI ranks here are oversubscribed anyway.
    cpus=$(( $(nproc) > 16 ? $(nproc) : 16 ))
    cat > "$CONF" <<EOF
ClusterName=hpcray-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=pmi2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
KillWait=5
InactiveLimit=0
MinJobAge=30
NodeName=localhost NodeHostname=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}

start_munge() {
    if pgrep -x munged >/dev/null; then
        return
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
    chmod 400 /etc/munge/munge.key
    chmod 700 /etc/munge
    log "starting munged"
    su -s /bin/sh munge -c "munged" || munged --force
}

ready() {
    sinfo -h -o "%T" 2>/dev/null | grep -q -E "^(idle|mixed|allocated)"
}

start() {
    install_packages
    write_config
    start_munge
    if ! pgrep -x slurmctld >/dev/null; then
        log "starting slurmctld"
        slurmctld
    fi
    if ! pgrep -x slurmd >/dev/null; then
        log "starting slurmd"
        slurmd
    fi
    for _ in $(seq 1 60); do
        if ready; then
            log "ready: $(sinfo -h -o '%P %D %T %c')"
            return 0
        fi
        scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
        sleep 1
    done
    log "Slurm did not become ready; logs in $DIR/log"
    tail -n 20 "$DIR"/log/*.log >&2 || true
    return 1
}

stop() {
    for daemon in slurmd slurmctld; do
        if [ -f "$DIR/$daemon.pid" ]; then
            kill "$(cat "$DIR/$daemon.pid")" 2>/dev/null || true
        fi
    done
    log "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if ready; then log "up"; else log "down"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
