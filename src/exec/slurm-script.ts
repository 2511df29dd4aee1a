// The two shell scripts of a Slurm attempt. Both are constant text: everything that varies (the
// attempt directory, the log cap, the process limit) arrives as arguments and everything from the spec (command,
// environment, working directory) is read from files, so nothing a user wrote is ever spliced
// into shell code.
//
// Both run as the project's uid (sbatch --uid). Attempt directory (on a filesystem shared by fabrik
// and the compute nodes; see slurm.ts for owners and modes):
//   batch.sh, task.sh     these scripts (batch.sh is root's: sbatch reads it at submit)
//   command.sh            the spec's setup and run, verbatim, run with /bin/sh as on the local executor
//   env                   NAME=VALUE entries separated by NUL: the spec's env, then fabrik's
//   workdir               the working directory (NUL-terminated)
//   tasks                 the number of tasks (nodes)
//   job.id                Slurm's job id, written by fabrik right after sbatch
//   batch.log             the batch script's own output (srun's messages)
//   task-N.log            task N's stdout and stderr, capped
//   task-N.exit.json      {"jobId","code","signal","oom"} of task N, written when it ends
//   job-ID.start          written by the batch script when job ID starts
//   job-ID.exit.json      {"jobId","code","signal"} of the batch script (srun's exit code)
// The exit records are how fabrik learns the end of a job that Slurm no longer lists (MinJobAge);
// they are written to a temporary name and renamed, so a reader never sees half a record.

/** Run by sbatch on the first node of the allocation: `batch.sh <attempt dir> <log cap bytes> <pids>`. */
export const BATCH_SCRIPT = `#!/bin/bash
# fabrik: one task per node with srun, then an exit record next to the logs.
dir="$1"
cap="$2"
pids="$3"
rec="$dir/job-$SLURM_JOB_ID"
date +%s >"$rec.start.tmp" && mv -f "$rec.start.tmp" "$rec.start"
# Record a SIGTERM (scancel, time limit) and keep waiting for srun, which ends its tasks.
term=''
trap 'term=TERM' TERM
trap 'term=INT' INT
# Rendezvous: rank 0 runs on the first node of the allocation; its address, not its name, because
# node names need not resolve.
first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
addr=$(scontrol show node "$first" 2>/dev/null | tr ' ' '\\n' | sed -n 's/^NodeAddr=//p' | head -n 1)
export FABRIK_MASTER_ADDR="\${addr:-$first}"
export FABRIK_MASTER_PORT=$((29500 + SLURM_JOB_ID % 20000))
srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 \\
  --kill-on-bad-exit=1 /bin/bash "$dir/task.sh" "$dir" "$cap" "$pids" &
step=$!
while :; do
  wait "$step"
  rc=$?
  # A trapped signal interrupts wait; srun is then still there and is waited for again.
  kill -0 "$step" 2>/dev/null || break
done
sig=null
[ -n "$term" ] && sig="\\"$term\\""
printf '{"jobId":"%s","code":%d,"signal":%s}\\n' "$SLURM_JOB_ID" "$rc" "$sig" >"$rec.exit.json.tmp"
mv -f "$rec.exit.json.tmp" "$rec.exit.json"
exit "$rc"
`;

/** Run by srun once per node: `task.sh <attempt dir> <log cap bytes> <pids>`. */
export const TASK_SCRIPT = `#!/bin/bash
# This shell is the task Slurm knows: it forwards SIGTERM to the command and stays to write the
# exit record.
trap 'true' TERM INT
dir="$1"
cap="$2"
pids="$3"
rank="$SLURM_PROCID"
log="$dir/task-$rank.log"
exitrec="$dir/task-$rank.exit.json"
while IFS= read -r -d '' kv; do export "$kv"; done <"$dir/env"
# Per rank, as Slurm placed them: one task per node, so rank = node rank.
export RANK="$SLURM_PROCID" NODE_RANK="$SLURM_NODEID" FABRIK_NODE_RANK="$SLURM_NODEID" LOCAL_RANK=0
export WORLD_SIZE="$SLURM_NNODES" FABRIK_NUM_NODES="$SLURM_NNODES"
export MASTER_ADDR="$FABRIK_MASTER_ADDR" MASTER_PORT="$FABRIK_MASTER_PORT"
unset FABRIK_MASTER_ADDR FABRIK_MASTER_PORT
# The GPUs Slurm allocated (gres); NVIDIA's container runtimes read the second name.
export CUDA_VISIBLE_DEVICES="\${CUDA_VISIBLE_DEVICES-}" NVIDIA_VISIBLE_DEVICES="\${CUDA_VISIBLE_DEVICES-}"
# The log: capped; it keeps flowing while the task handles SIGTERM (a checkpoint's last words).
# stdbuf: head writes each chunk at once, so fabrik logs --follow sees output as it comes.
capped() {
  trap '' TERM INT
  stdbuf -o0 head -c "$cap"
  # Past the cap: say so once, then keep draining so the task never blocks on a full pipe.
  if IFS= read -r -n 1 _; then
    printf '\\n[fabrik: log truncated at %s bytes; output after this point was discarded]\\n' "$cap"
    cat >/dev/null
  fi
}
IFS= read -r -d '' wd <"$dir/workdir"
if ! cd -- "$wd" 2>/dev/null; then
  echo "[fabrik: cannot enter the working directory $wd on $SLURMD_NODENAME]" >>"$log"
  rc=1
else
  exec 3> >(capped >>"$log")
  logger=$!
  # Processes: RLIMIT_NPROC, which the kernel counts per uid on the node, so it bounds the project
  # (all its tasks on this node together), setsid or not; Slurm 22.05 has no pids cgroup. Only the
  # command gets it: this shell must still fork to write the exit record after a fork bomb.
  hard=$(ulimit -H -u)
  [ "$hard" != unlimited ] && [ "$hard" -lt "$pids" ] && pids="$hard"
  # Its own process group (set -m): with proctrack/cgroup Slurm signals only this shell, except
  # SIGKILL, which reaches every process of the step's cgroup, setsid or not.
  set -m
  (ulimit -u "$pids" && exec /bin/sh "$dir/command.sh") </dev/null >&3 2>&1 &
  cmd=$!
  set +m
  exec 3>&-
  trap 'kill -TERM -- -"$cmd" 2>/dev/null' TERM
  trap 'kill -INT -- -"$cmd" 2>/dev/null' INT
  # A trapped signal interrupts wait; the command's status is kept for the last wait.
  while kill -0 "$cmd" 2>/dev/null; do wait "$cmd"; done
  wait "$cmd"
  rc=$?
  # The log's last lines, unless something the command left behind keeps it open: the task ends
  # with its command, and Slurm kills what is left in the step's cgroup.
  for _ in $(seq 50); do kill -0 "$logger" 2>/dev/null || break; sleep 0.1; done
fi
sig=null
[ "$rc" -gt 128 ] && name=$(kill -l $((rc - 128)) 2>/dev/null) && sig="\\"SIG$name\\""
# The memory cgroup Slurm made for this task counts OOM kills (v1: memory.oom_control, v2:
# memory.events); squeue's OUT_OF_MEMORY is gone after MinJobAge, this record stays.
oom=false
while IFS=: read -r _ ctl path; do
  case "$ctl" in
    memory | memory,* | *,memory | *,memory,*) f="/sys/fs/cgroup/$ctl$path/memory.oom_control" ;;
    '') f="/sys/fs/cgroup$path/memory.events" ;;
    *) continue ;;
  esac
  n=$(sed -n 's/^oom_kill //p' "$f" 2>/dev/null)
  [ "\${n:-0}" -gt 0 ] && oom=true
done </proc/self/cgroup
printf '{"jobId":"%s","code":%d,"signal":%s,"oom":%s}\\n' "$SLURM_JOB_ID" "$rc" "$sig" "$oom" >"$exitrec.tmp"
mv -f "$exitrec.tmp" "$exitrec"
exit "$rc"
`;
