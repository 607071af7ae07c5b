#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the tests of tools/submit.py (Debian's slurm-wlm
# and munge; installing them needs root). Its configuration, state and logs live in $MAE_SLURM_DIR
# (default /tmp/mae-slurm); clients find it through SLURM_CONF, which `start` prints.
#
#   scripts/slurm_local.sh start    installs what is missing, starts munged, slurmctld and slurmd, and
#                                   waits until the node is idle; prints SLURM_CONF=...
#   scripts/slurm_local.sh stop     stops the daemons that `start` started (by their pid files)
#
# A failure says why in one line on stderr and exits 1 (the tests fail with that line).
set -uo pipefail

DIR=${MAE_SLURM_DIR:-/tmp/mae-slurm}
CONF=$DIR/slurm.conf
HOST=$(hostname -s)
fail() { echo "slurm_local: $*" >&2; exit 1; }

start() {
    mkdir -p "$DIR"/state "$DIR"/spool "$DIR"/log || fail "cannot create $DIR"
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
        [[ $(id -u) == 0 ]] || fail "slurm-wlm and munge are not installed, and installing them needs root"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q slurm-wlm munge >"$DIR/log/apt.log" 2>&1 \
            || { apt-get update -q >>"$DIR/log/apt.log" 2>&1 && apt-get install -y -q slurm-wlm munge >>"$DIR/log/apt.log" 2>&1; } \
            || fail "apt-get install slurm-wlm munge failed (see $DIR/log/apt.log)"
    fi

    # munge: a 1024-byte key readable by the munge user only, then its daemon (as that user)
    if [[ ! -s /etc/munge/munge.key ]]; then
        install -d -o munge -g munge -m 700 /etc/munge
        head -c 1024 /dev/urandom >/etc/munge/munge.key && chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key \
            || fail "cannot write /etc/munge/munge.key"
    fi
    install -d -o munge -g munge -m 755 /run/munge /var/log/munge /var/lib/munge
    if ! munge -n >/dev/null 2>&1; then
        runuser -u munge -- munged --force || fail "munged did not start (see /var/log/munge/munged.log)"
        for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
        munge -n >/dev/null 2>&1 || fail "munged started but does not answer"
        echo started >"$DIR/munged.started"
    fi

    cat >"$CONF" <<EOF
ClusterName=mae-local
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
KillWait=30
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$(nproc --all) State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
    export SLURM_CONF=$CONF
    if ! scontrol ping 2>/dev/null | grep -q UP; then
        slurmctld -f "$CONF" || fail "slurmctld did not start (see $DIR/log/slurmctld.log)"
    fi
    if [[ ! -f $DIR/slurmd.pid ]] || ! kill -0 "$(cat "$DIR/slurmd.pid")" 2>/dev/null; then
        slurmd -f "$CONF" || fail "slurmd did not start (see $DIR/log/slurmd.log)"
    fi
    for _ in $(seq 100); do
        state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null)
        [[ $state == idle* || $state == mixed* || $state == allocated* ]] && { echo "SLURM_CONF=$CONF"; return 0; }
        sleep 0.2
    done
    fail "node $HOST is not idle after 20 s (state '${state:-none}'; see $DIR/log/)"
}

stop() {
    for daemon in slurmd slurmctld; do
        [[ -f $DIR/$daemon.pid ]] && kill "$(cat "$DIR/$daemon.pid")" 2>/dev/null
        rm -f "$DIR/$daemon.pid"
    done
    if [[ -f $DIR/munged.started ]]; then
        pkill -x munged
        rm -f "$DIR/munged.started"
    fi
    return 0
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
