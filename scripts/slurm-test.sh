#!/usr/bin/env bash
# End-to-end test on a real Slurm cluster of one node: installs Debian's Slurm and MUNGE if
# missing, starts munged (unless one is already running), slurmctld and slurmd on 127.0.0.1
# with a throw-away configuration, runs a small study through `kdlab study --slurm`, waits for
# the merge job, and checks that the merged results are byte-identical to a local run of the
# same study and that the provenance names Slurm's jobs; then a sequential design whose merge jobs
# submit its later looks. Stops every daemon it started, also
# on failure. Must run as root (packages, daemons). Fails loudly, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WAIT_SECONDS=${KDLAB_SLURM_TEST_WAIT:-600}
START=$(date +%s)

say() { echo "slurm-test: $*" >&2; }
fail() {
    say "FAILED: $*"
    exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root: it installs slurmctld, slurmd, slurm-client and munge and starts their daemons"

# --- packages -----------------------------------------------------------------------------
need=()
for pkg in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq
    # policy-rc.d keeps the packages from starting daemons with the system's configuration.
    had_policy=0
    [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    if [ $had_policy = 0 ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
fi

# --- kdlab --------------------------------------------------------------------------------
[ -x target/release/kdlab ] || scripts/setup.sh
KDLAB="$ROOT/target/release/kdlab"

W=$(mktemp -d /tmp/kdlab-slurm-test.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/state" "$W/spool"
export SLURM_CONF="$W/slurm.conf"

# --- cleanup: only what this script started -------------------------------------------------
MUNGED_PID=""
SLURMCTLD_PID=""
SLURMD_PID=""
cleanup() {
    status=$?
    set +e
    if [ -n "$SLURMCTLD_PID" ]; then
        scancel --name="${JOB_NAME:-none}" >/dev/null 2>&1
        scancel --name="${JOB_NAME:-none}-merge" >/dev/null 2>&1
    fi
    if [ $status -ne 0 ]; then
        for log in "$W"/slurmctld.log "$W"/slurmd.log "$W"/out/*/slurm/logs/*; do
            [ -f "$log" ] && { say "--- tail of $log"; tail -n 25 "$log" >&2; }
        done
    fi
    for pid in $SLURMD_PID $SLURMCTLD_PID; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    if [ -n "$MUNGED_PID" ]; then
        kill "$MUNGED_PID" 2>/dev/null && wait "$MUNGED_PID" 2>/dev/null
    fi
    if [ $status -eq 0 ]; then
        rm -rf "$W"
        say "daemons this script started are stopped"
    else
        say "daemons this script started are stopped (work files kept in $W)"
    fi
    exit $status
}
trap cleanup EXIT

# --- munge ----------------------------------------------------------------------------------
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "using the munged that is already running"
else
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating a munge key"
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 700 /etc/munge
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    mkdir -p "$W/munge"
    chown munge:munge "$W/munge"
    # In the foreground as this shell's child (setpriv execs, no fork), so it is reaped on stop.
    setpriv --reuid=munge --regid=munge --init-groups munged --foreground --log-file="$W/munge/munged.log" >"$W/munged.out" 2>&1 &
    MUNGED_PID=$!
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    kill -0 "$MUNGED_PID" 2>/dev/null || fail "munged exited: $(tail -n 5 "$W/munge/munged.log" 2>/dev/null)"
    munge -n | unmunge >/dev/null || fail "munged runs but a credential does not round-trip"
fi

# --- slurm.conf -----------------------------------------------------------------------------
# The node line as slurmd itself detects this machine (name, CPUs, memory), on 127.0.0.1.
NODE_LINE=$(slurmd -C | head -n 1)
NODE=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$NODE_LINE")
[ -n "$NODE" ] || fail "slurmd -C printed no node line: $NODE_LINE"
cat >"$SLURM_CONF" <<EOF
ClusterName=kdlabtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/slurmctld.log
SlurmdLogFile=$W/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons --------------------------------------------------------------------------------
slurmctld -D -f "$SLURM_CONF" >"$W/slurmctld.out" 2>&1 &
SLURMCTLD_PID=$!
slurmd -D -f "$SLURM_CONF" >"$W/slurmd.out" 2>&1 &
SLURMD_PID=$!
say "slurmctld (pid $SLURMCTLD_PID) and slurmd (pid $SLURMD_PID) started; waiting for node $NODE"
state=""
for _ in $(seq 60); do
    kill -0 "$SLURMCTLD_PID" 2>/dev/null || fail "slurmctld exited: $(tail -n 5 "$W/slurmctld.out" "$W/slurmctld.log" 2>/dev/null)"
    kill -0 "$SLURMD_PID" 2>/dev/null || fail "slurmd exited: $(tail -n 5 "$W/slurmd.out" "$W/slurmd.log" 2>/dev/null)"
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1 || true)
    [ "$state" = idle ] && break
    sleep 1
done
[ "$state" = idle ] || fail "node $NODE is '${state:-unknown}', not idle, after 60 s: $(scontrol show node "$NODE" 2>&1 | grep -i reason)"

# --- the study, locally and through Slurm ---------------------------------------------------
cd "$W"
cp "$ROOT/tests/data/tiny.toml" tiny.toml   # the end-to-end tests' study: 2 cells x 3 seeds
"$KDLAB" study tiny.toml --out local --jobs 2 >/dev/null 2>local.err || fail "the local run failed: $(tail -n 5 local.err)"
submitted=$("$KDLAB" study tiny.toml --out out --slurm --cpus-per-task 1 --max-parallel 2 --time 10:00) ||
    fail "kdlab study --slurm failed"
echo "$submitted" >&2
ARRAY=$(sed -n 's/^ *array_job_id=//p' <<<"$submitted")
MERGE=$(sed -n 's/^ *merge_job_id=//p' <<<"$submitted")
[ -n "$ARRAY" ] && [ -n "$MERGE" ] || fail "no job ids in kdlab's output"
JOB_NAME=$(grep -m1 '^#SBATCH --job-name=' out/tiny/slurm/array.sbatch | cut -d= -f2)
# The merge job waits for the whole array (read back right away, before the array can finish).
scontrol show job "$MERGE" | grep -q "Dependency=afterok:${ARRAY}" ||
    fail "the merge job does not depend on the array: $(scontrol show job "$MERGE" | grep -o 'Dependency=[^ ]*')"

say "waiting for array job $ARRAY and merge job $MERGE (at most $WAIT_SECONDS s)"
deadline=$(( $(date +%s) + WAIT_SECONDS ))
while squeue -h -j "$ARRAY,$MERGE" 2>/dev/null | grep -q .; do
    reason=$(squeue -h -j "$MERGE" -o %r 2>/dev/null || true)
    [ "$reason" = DependencyNeverSatisfied ] && { "$KDLAB" status tiny.toml --out out >&2 || true; fail "an array task failed, so the merge job can never run"; }
    [ "$(date +%s)" -lt "$deadline" ] || fail "the jobs did not finish within $WAIT_SECONDS s: $(squeue -h -o '%i %T %r' 2>&1)"
    sleep 2
done

# --- checks ---------------------------------------------------------------------------------
[ -f out/tiny.md ] || fail "the merge job wrote no report (log: $(cat out/tiny/slurm/logs/merge-*.out 2>/dev/null))"
for f in results.csv results.parquet verdicts.json; do
    cmp "local/tiny/$f" "out/tiny/$f" || fail "$f of the Slurm run differs from the local run's"
done
grep -q '"name": "slurm"' out/tiny/provenance.json || fail "provenance.json does not name Slurm"
grep -q "\"$ARRAY\"" out/tiny/provenance.json || fail "provenance.json does not list array job $ARRAY"
grep -q "\"merge_job_id\": \"$MERGE\"" out/tiny/provenance.json || fail "provenance.json does not list merge job $MERGE"
grep -q "| scheduler | slurm: job array $ARRAY" out/tiny.md || fail "the report's provenance does not name the job array"
status_text=$("$KDLAB" status tiny.toml --out out)
grep -q "2 tasks: 2 done, 0 running, 0 failed, 0 pending" <<<"$status_text" || fail "kdlab status: $status_text"
# --- a failed task, resubmitted alone with the command kdlab status prints ------------------
# Losing task 1's shards makes it a task that left the queue unfinished: a failed one.
rm -f out/tiny/cells/"$(sed -n 's/^1\t\([0-9a-f]*\)\t.*/\1/p' <("$KDLAB" study tiny.toml --plan --out plan))"-seed*.json
status_text=$("$KDLAB" status tiny.toml --out out)
grep -q "2 tasks: 1 done, 0 running, 1 failed, 0 pending" <<<"$status_text" || fail "kdlab status after losing task 1: $status_text"
resubmit=$(grep -m1 '^A=\$(sbatch --parsable --array=1%2 ' <<<"$status_text") || fail "kdlab status printed no resubmission command: $status_text"
say "resubmitting: $resubmit"
eval "$resubmit" >/dev/null
deadline=$(( $(date +%s) + WAIT_SECONDS ))
while squeue -h --name="$JOB_NAME,$JOB_NAME-merge" 2>/dev/null | grep -q .; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the resubmitted jobs did not finish within $WAIT_SECONDS s"
    sleep 2
done
for f in results.csv results.parquet; do
    cmp "local/tiny/$f" "out/tiny/$f" || fail "$f after the resubmission differs from the local run's"
done
grep -q "2 tasks: 2 done" <<<"$("$KDLAB" status tiny.toml --out out)" || fail "task 1 is not done after its resubmission"
[ "$(grep -c '"[0-9]*"' <(sed -n '/array_job_ids/,/]/p' out/tiny/provenance.json))" = 2 ] ||
    fail "provenance.json should list both job arrays after the resubmission"

# --- a sequential design: each merge job submits the next look until the verdicts decide ------
sed -e 's/^seeds = 3$/seeds = { min = 2, max = 6, step = 2 }/' -e 's/^n_test = 300$/n_test = [300, 301]/' tiny.toml >seq.toml
printf '\n[[predictions]]\nid = "null-control"\nmetric = "accuracy"\naxis = "data.n_test"\narm = "labels"\ncompare = [301, 300]\nexpect = "higher"\n' >>seq.toml
"$KDLAB" study seq.toml --out seqlocal --jobs 2 >/dev/null 2>seqlocal.err || fail "the local sequential run failed: $(tail -n 5 seqlocal.err)"
"$KDLAB" study seq.toml --out seqout --slurm --cpus-per-task 1 --time 10:00 >/dev/null || fail "kdlab study --slurm failed for the sequential design"
SEQ_NAME=$(grep -m1 '^#SBATCH --job-name=' seqout/tiny/slurm/array.sbatch | cut -d= -f2)
deadline=$(( $(date +%s) + WAIT_SECONDS ))
while squeue -h --name="$SEQ_NAME,$SEQ_NAME-merge" 2>/dev/null | grep -q .; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the sequential design's jobs did not finish within $WAIT_SECONDS s"
    sleep 2
done
[ -f seqout/tiny.md ] || fail "the sequential design's last merge wrote no report (logs: $(tail -n 3 seqout/tiny/slurm/logs/merge-*.out 2>/dev/null))"
for f in results.csv verdicts.json; do
    cmp "seqlocal/tiny/$f" "seqout/tiny/$f" || fail "$f of the sequential Slurm run differs from the local run's"
done
looks=$(grep -c "more units: submitted array job" seqout/tiny/slurm/logs/merge-*.out | awk -F: '{s += $2} END {print s}')
[ "$looks" -ge 1 ] || fail "no merge job submitted a later look"

say "passed: results.csv, results.parquet and verdicts.json of the Slurm run (array $ARRAY, merge $MERGE) equal the local run's, also after resubmitting a failed task alone; a sequential design's merge jobs submitted $looks later looks and gave the local results; $(( $(date +%s) - START )) s"
