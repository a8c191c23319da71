#!/usr/bin/env bash
# Cloud TPU VM lifecycle for jaxmusic, the way MaxText's and big_vision's
# launchers drive gcloud: create a TPU VM (or a queued resource), install
# this checkout on every worker, mount the data bucket, launch
# `python -m jaxmusic.main` on all workers at once, collect the log, delete.
#
#   tpu_scripts/pod.sh COMMAND --name NAME --zone ZONE [options] [-- MAIN_ARGS]
#
# Commands:
#   create    the TPU VM (--queued: a queued resource, waited on until ACTIVE)
#   install   copy this checkout to every worker, pip install it with jax[tpu]
#             and its cloud extra (gs:// workdirs)
#   mount     gcsfuse --bucket at --mount on every worker
#   launch    python -m jaxmusic.main --distributed MAIN_ARGS on all workers;
#             the workers' output is tee'd to LOG_DIR/NAME.log
#   stop      stop the training processes (the VM stays)
#   delete    delete the TPU VM (and its queued resource)
#   run       create, install, mount (with --bucket), launch, then delete
#             (unless --keep)
#
# Options:
#   --name NAME          TPU VM name (required)
#   --zone ZONE          e.g. us-central2-b (required)
#   --project PROJECT    default: gcloud's configured project
#   --type TYPE          accelerator type, e.g. v4-32 (default v4-8)
#   --version VERSION    runtime version (default tpu-ubuntu2204-base)
#   --spot               a spot (preemptible) VM
#   --queued             create through a queued resource
#   --bucket gs://B[/DIR]  data bucket to mount (gcsfuse) on every worker
#   --mount PATH         mount point (default /mnt/data)
#   --log-dir DIR        where launch writes NAME.log (default logs)
#   --keep               run: leave the VM up after the job
#   --dry-run            print every command instead of running it
#
# Example (see tpu_scripts/README.md):
#   tpu_scripts/pod.sh run --name mert --zone us-central2-b --type v4-32 \
#     --bucket gs://my-bucket/mtat_prepared -- \
#     --config ml_collections_configs/mert.py:input=waveform \
#     --config.data.dir /mnt/data --workdir /mnt/data/runs/mert95m
set -euo pipefail

JAX_VERSION="0.10.2"
LIBTPU_INDEX="https://storage.googleapis.com/jax-releases/libtpu_releases.html"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

COMMAND="${1:-}"
[[ -z "$COMMAND" || "$COMMAND" == "-h" || "$COMMAND" == "--help" ]] && usage 0
shift
NAME="" ZONE="" PROJECT="" TYPE="v4-8" VERSION="tpu-ubuntu2204-base"
SPOT=0 QUEUED=0 BUCKET="" MOUNT="/mnt/data" LOG_DIR="logs" KEEP=0 DRY_RUN=0
MAIN_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --zone) ZONE="$2"; shift 2 ;;
    --project) PROJECT="$2"; shift 2 ;;
    --type) TYPE="$2"; shift 2 ;;
    --version) VERSION="$2"; shift 2 ;;
    --spot) SPOT=1; shift ;;
    --queued) QUEUED=1; shift ;;
    --bucket) BUCKET="$2"; shift 2 ;;
    --mount) MOUNT="$2"; shift 2 ;;
    --log-dir) LOG_DIR="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; MAIN_ARGS=("$@"); break ;;
    *) echo "pod.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$NAME" ]] || { echo "pod.sh: --name is required" >&2; exit 2; }
[[ -n "$ZONE" ]] || { echo "pod.sh: --zone is required" >&2; exit 2; }

COMMON=(--zone="$ZONE")
[[ -n "$PROJECT" ]] && COMMON+=(--project="$PROJECT")

# Prints the command (quoted, one line) in a dry run; runs it otherwise.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$NAME" "${COMMON[@]}" --worker=all \
    --command="$1"
}

create() {
  local extra=()
  [[ "$SPOT" == 1 ]] && extra+=(--spot)
  if [[ "$QUEUED" == 1 ]]; then
    run gcloud compute tpus queued-resources create "$NAME" "${COMMON[@]}" \
      --node-id="$NAME" --accelerator-type="$TYPE" \
      --runtime-version="$VERSION" "${extra[@]}"
    [[ "$DRY_RUN" == 1 ]] && return
    local state=""
    until [[ "$state" == "ACTIVE" ]]; do
      state=$(gcloud compute tpus queued-resources describe "$NAME" \
        "${COMMON[@]}" --format='value(state.state)')
      case "$state" in
        FAILED|SUSPENDED) echo "pod.sh: queued resource $NAME is $state" >&2
                          exit 1 ;;
        ACTIVE) ;;
        *) echo "pod.sh: queued resource $NAME is ${state:-pending}; waiting"
           sleep 30 ;;
      esac
    done
  else
    run gcloud compute tpus tpu-vm create "$NAME" "${COMMON[@]}" \
      --accelerator-type="$TYPE" --version="$VERSION" "${extra[@]}"
  fi
}

install() {
  # This checkout, as committed (git archive), or the working tree.
  local root archive
  root="$(cd "$(dirname "$0")/.." && pwd)"
  archive="$(mktemp -d)/jaxmusic.tar.gz"
  if git -C "$root" rev-parse --git-dir > /dev/null 2>&1; then
    run git -C "$root" archive --format=tar.gz -o "$archive" HEAD
  else
    run tar -czf "$archive" -C "$root" --exclude=.venv --exclude=.cache .
  fi
  run gcloud compute tpus tpu-vm scp "$archive" "$NAME:jaxmusic.tar.gz" \
    "${COMMON[@]}" --worker=all
  on_all_workers "rm -rf ~/jaxmusic && mkdir -p ~/jaxmusic && \
tar -xzf ~/jaxmusic.tar.gz -C ~/jaxmusic && python3 -m venv ~/jaxmusic_venv \
&& ~/jaxmusic_venv/bin/pip install --quiet -e ~/jaxmusic'[cloud]' \
'jax[tpu]==$JAX_VERSION' -f $LIBTPU_INDEX"
}

mount_bucket() {
  [[ -n "$BUCKET" ]] || { echo "pod.sh: mount needs --bucket" >&2; exit 2; }
  local path="${BUCKET#gs://}" bucket dir_opt=""
  bucket="${path%%/*}"
  [[ "$path" == */* ]] && dir_opt="--only-dir ${path#*/}"
  on_all_workers "sudo mkdir -p $MOUNT && sudo chown \$USER $MOUNT && \
gcsfuse --implicit-dirs $dir_opt $bucket $MOUNT"
}

launch() {
  [[ ${#MAIN_ARGS[@]} -gt 0 ]] || {
    echo "pod.sh: launch needs main's arguments after --" >&2; exit 2; }
  local args
  args=$(printf ' %q' "${MAIN_ARGS[@]}")
  run mkdir -p "$LOG_DIR"
  local cmd="cd ~/jaxmusic && ~/jaxmusic_venv/bin/python -m jaxmusic.main \
--distributed$args 2>&1 | tee ~/jaxmusic_train.log"
  if [[ "$DRY_RUN" == 1 ]]; then
    on_all_workers "$cmd"
    echo "+ (output tee'd to $LOG_DIR/$NAME.log)"
  else
    on_all_workers "$cmd" 2>&1 | tee "$LOG_DIR/$NAME.log"
  fi
}

stop() {
  on_all_workers "pkill -f jaxmusic.main || true"
}

delete() {
  run gcloud compute tpus tpu-vm delete "$NAME" "${COMMON[@]}" --quiet
  if [[ "$QUEUED" == 1 ]]; then
    run gcloud compute tpus queued-resources delete "$NAME" "${COMMON[@]}" \
      --quiet --force
  fi
}

case "$COMMAND" in
  create) create ;;
  install) install ;;
  mount) mount_bucket ;;
  launch) launch ;;
  stop) stop ;;
  delete) delete ;;
  run)
    create
    install
    [[ -n "$BUCKET" ]] && mount_bucket
    status=0
    launch || status=$?
    [[ "$KEEP" == 1 ]] || delete
    exit "$status" ;;
  *) echo "pod.sh: unknown command $COMMAND (see --help)" >&2; exit 2 ;;
esac
