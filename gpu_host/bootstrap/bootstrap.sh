#!/bin/bash
# Installs and initializes the Spinup GPU host. Idempotent.
#
#   bootstrap.sh install DIR   first boot (from first-boot.sh): install this script, the
#                              systemd units and the lifecycle agent from the unpacked release
#                              DIR, enable and start spinup-lifecycle.service. The agent
#                              (gpu_host/bootstrap/lifecycle.py) answers the Auto Scaling launch
#                              hook: it runs "initialize" once, and starts spinup.target only
#                              when the instance goes into service.
#   bootstrap.sh initialize    once per instance (from the agent): every download the host
#                              needs: system packages, the release the SSM parameter
#                              "$SPINUP_SSM_PREFIX/release" names, the backend image (Python and
#                              the hash-locked dependencies), the Triton image; then the model
#                              repository and its TensorRT engines: generate, run Triton once
#                              (its warm-up builds the engines into /var/lib/spinup/trt-engines),
#                              verify against the ONNX reference, fall back to FP32 where FP16
#                              is off. Every network step goes through `retry` (backoff, a time
#                              limit per try, a bounded number of tries).
#
# Written for the Amazon ECS GPU-optimized Amazon Linux 2023 AMI (infra/config.py): NVIDIA
# driver, Docker and the NVIDIA container toolkit preinstalled, dnf; apt-get where there is no
# dnf. No Docker Compose (the AMI is not known to ship its plugin, and it would have to come
# from outside the package repositories): each container is a systemd unit running
# `docker run --pull never` (systemd/spinup-*.service).
#
# A start (spinup.target) downloads nothing: it renders the settings, then runs the images
# initialize left on the root volume (`--pull never`). A new release therefore reaches a host
# only through a new instance (the group's instance refresh), never at a start.
#
# Layout: /opt/spinup/releases/<asset hash>/{gpu_host,lambdas,systemd,frontend/js/protocol.json,
# model_repository}, /opt/spinup/current -> the active release, /etc/spinup/*.env, and the
# lifecycle agent's own copy of its modules in /usr/local/lib/spinup (it runs before any
# release is installed, on the system Python). SPINUP_FAKE_ROOT prefixes every path (tests).
set -euo pipefail

readonly FAKE_ROOT=${SPINUP_FAKE_ROOT:-}
readonly ROOT=$FAKE_ROOT/opt/spinup
readonly RELEASES=$ROOT/releases
readonly CURRENT=$ROOT/current
readonly SELF=$FAKE_ROOT/usr/local/sbin/spinup-bootstrap
readonly UNIT_DIR=$FAKE_ROOT/etc/systemd/system
readonly SETTINGS_FILE=$FAKE_ROOT/etc/spinup/bootstrap.env
readonly KEEP_RELEASES=2
# Instance state on the root volume (survives the stop into the warm pool). The engine cache
# has the same path on the host and in the containers: the generated config.pbtxt names it.
readonly STATE_DIR=$FAKE_ROOT/var/lib/spinup
readonly ENGINE_CACHE=/var/lib/spinup/trt-engines
readonly DECISION=precisions.json
readonly TRITON_INIT_NAME=spinup-triton-init
readonly TRITON_GRPC=127.0.0.1:8001
readonly TRITON_READY_URL=${SPINUP_TRITON_READY_URL:-http://127.0.0.1:8000/v2/health/ready}
# Loading every model and building its engines (minutes per model on a T4).
readonly TRITON_READY_TIMEOUT_S=${SPINUP_TRITON_READY_TIMEOUT_S:-3600}
readonly TRITON_POLL_S=${SPINUP_TRITON_POLL_S:-5}
# Each round verifies, then regenerates the models that fell back to FP32; a model only ever
# goes from FP16 to FP32, so one more round than there are models always suffices.
readonly VERIFY_ROUNDS=${SPINUP_VERIFY_ROUNDS:-6}
# Bounds of what the host writes to its 40 GiB root volume: the journal (every unit's and
# container's output ends up there) and each container's json-file log.
readonly JOURNAL_MAX_USE=1G
readonly DOCKER_LOG_OPTS=(--log-driver json-file --log-opt max-size=20m --log-opt max-file=3)
readonly AGENT_DIR=$FAKE_ROOT/usr/local/lib/spinup
# The lifecycle agent's modules: standard library + boto3, nothing else from the release.
readonly AGENT_FILES=(
  gpu_host/__init__.py
  gpu_host/bootstrap/__init__.py
  gpu_host/bootstrap/parameters.py
  gpu_host/bootstrap/imds.py
  gpu_host/bootstrap/lifecycle.py
  gpu_host/bootstrap/lifecycle_steps.py
  gpu_host/bootstrap/launch_hook.py
)
# Network steps: tries, the first pause (doubling), and the time limit of one try.
readonly RETRY_TRIES=${SPINUP_RETRY_TRIES:-5}
readonly RETRY_PAUSE_S=${SPINUP_RETRY_PAUSE_S:-10}
readonly RETRY_TRY_LIMIT_S=${SPINUP_RETRY_TRY_LIMIT_S:-1800}
# apt waits this long for another apt (unattended-upgrades at boot) to release its lock; dnf
# waits for another dnf's lock by itself, and `retry`'s time limit bounds that wait.
readonly APT_LOCK_TIMEOUT_S=600
readonly UNCONFIRMED_DIGEST=sha256:0000000000000000000000000000000000000000000000000000000000000000
export DEBIAN_FRONTEND=noninteractive

log() { echo "spinup-bootstrap: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

load_settings() {
  # shellcheck source=/dev/null
  [[ -r $SETTINGS_FILE ]] && source "$SETTINGS_FILE"
  : "${SPINUP_SSM_PREFIX:?set in /etc/spinup/bootstrap.env}" "${AWS_REGION:?}"
}

# The release id is the asset hash CDK put in the object key: s3://bucket/<hash>.zip
release_id() {
  local name=${1##*/}
  name=${name%.zip}
  [[ $name =~ ^[0-9a-f]{16,128}$ ]] || die "unexpected release URL: $1"
  echo "$name"
}

# The agent's modules from a release (or the unpacked first-boot copy) into DEST.
install_agent() {
  local release=$1 dest=$2 file
  for file in "${AGENT_FILES[@]}"; do
    install -D -m 0644 "$release/$file" "$dest/$file"
  done
}

# Whether two files have the same bytes (coreutils only: the AMI, built from AL2023's minimal
# image, is not known to have diffutils' cmp).
same_file() {
  [[ -f $1 && -f $2 ]] && [[ $(sha256sum <"$1") == "$(sha256sum <"$2")" ]]
}

install_units() {
  local release=$1 changed=0 unit
  for unit in "$release"/systemd/*.service "$release"/systemd/*.target "$release"/systemd/*.timer; do
    if ! same_file "$unit" "$UNIT_DIR/${unit##*/}"; then
      install -m 0644 "$unit" "$UNIT_DIR/${unit##*/}"
      changed=1
    fi
  done
  install -D -m 0755 "$release/gpu_host/bootstrap/bootstrap.sh" "$SELF"
  install_agent "$release" "$AGENT_DIR"
  if ((changed)); then systemctl daemon-reload; fi
}

# retry WHAT COMMAND...: the one way a network step runs. Each try is bounded by
# RETRY_TRY_LIMIT_S (then killed); a failed try is followed by a pause that doubles; after
# RETRY_TRIES tries the step, and initialize, fail.
retry() {
  local what=$1 attempt pause=$RETRY_PAUSE_S
  shift
  for ((attempt = 1; ; attempt++)); do
    if timeout --kill-after=30 "$RETRY_TRY_LIMIT_S" "$@"; then
      return 0
    fi
    ((attempt < RETRY_TRIES)) || die "$what failed after $attempt tries"
    log "$what failed (try $attempt of $RETRY_TRIES); again in ${pause} s"
    sleep "$pause"
    pause=$((pause * 2))
  done
}

# pkg_install PACKAGE...: the one way system packages are installed: dnf (Amazon Linux 2023),
# else apt-get (Debian, Ubuntu); every download through `retry`.
pkg_install() {
  if command -v dnf >/dev/null; then
    retry "refreshing the package metadata" dnf -q -y makecache
    retry "installing $*" dnf -q -y install --setopt=install_weak_deps=False "$@"
  elif command -v apt-get >/dev/null; then
    retry "refreshing the package metadata" \
      apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT_S" -q update
    retry "installing $*" apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT_S" -q \
      install -y --no-install-recommends "$@"
  else
    die "no package manager (dnf, apt-get) to install $*"
  fi
}

ensure_system_packages() {
  if ! command -v nginx >/dev/null; then
    log "installing nginx"
    pkg_install nginx
  fi
}

# The distro's own site would shadow ours (the default server on the origin port): Debian's is
# sites-enabled/default; Amazon Linux's is inside nginx.conf, which ours replaces (it includes
# conf.d/*.conf, where render_config writes the site, and logs to the journal).
configure_nginx() {
  local release=$1
  if [[ -d $FAKE_ROOT/etc/nginx/sites-enabled ]]; then
    rm -f "$FAKE_ROOT/etc/nginx/sites-enabled/default"
  else
    install -D -m 0644 "$release/gpu_host/bootstrap/nginx.conf" "$FAKE_ROOT/etc/nginx/nginx.conf"
  fi
}

# The host itself: no ECS agent (the ECS AMI runs it; nothing here uses it, and it would poll
# for a cluster), and a journal that cannot fill the root volume.
configure_host() {
  if systemctl cat ecs.service >/dev/null 2>&1; then
    systemctl disable --now ecs.service
  fi
  install -d -m 0755 "$FAKE_ROOT/etc/systemd/journald.conf.d"
  printf '[Journal]\nSystemMaxUse=%s\n' "$JOURNAL_MAX_USE" \
    >"$FAKE_ROOT/etc/systemd/journald.conf.d/spinup.conf"
  systemctl restart systemd-journald.service
}

# The image names and digests (images.env, the one place they are written).
load_images() {
  local release=$1
  # shellcheck source=/dev/null
  source "$release/gpu_host/bootstrap/images.env"
  local image
  for image in "$SPINUP_TRITON_IMAGE" "$SPINUP_PYTHON_IMAGE"; do
    [[ $image =~ @sha256:[0-9a-f]{64}$ ]] || die "$image is not pinned by digest"
    [[ $image != *"@$UNCONFIRMED_DIGEST" ]] ||
      die "the digest of ${image%@*} is not confirmed yet: see gpu_host/bootstrap/images.env"
  done
}

build_release() {
  local url=$1 target=$2 partial="$2.partial"
  rm -rf "$partial"
  install -d "$partial"
  retry "downloading the release" aws s3 cp --region "$AWS_REGION" --only-show-errors "$url" "$partial/release.zip"
  python3 -m zipfile -e "$partial/release.zip" "$partial"
  rm "$partial/release.zip"
  load_images "$partial"
  # The backend's image: Python and the hash-locked dependencies (the base and the wheels
  # are downloaded here, once).
  retry "building the backend image" docker build --pull --tag "$SPINUP_BACKEND_IMAGE" \
    --build-arg "PYTHON_IMAGE=$SPINUP_PYTHON_IMAGE" \
    --file "$partial/gpu_host/bootstrap/backend.Dockerfile" "$partial"
  retry "pulling the Triton image" docker pull --quiet "$SPINUP_TRITON_IMAGE"
  prepare_models "$partial"
  chmod -R a+rX "$partial"
  mv -T "$partial" "$target"
}

# --- the model repository and its TensorRT engines (docs/models.md) ------------------------

# generate_repository RELEASE GPU [--precisions]: the gpu repository from the release's specs,
# inside the backend image (the code and its Python), offline. It creates the engine cache's
# directories; with --precisions it takes the verification's decision.
generate_repository() {
  local release=$1 gpu=$2 decision=()
  if [[ ${3:-} == --precisions ]]; then decision=(--precisions "/var/lib/spinup/$DECISION"); fi
  docker run --rm --pull never --network none --user 0:0 --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true "${DOCKER_LOG_OPTS[@]}" \
    --volume "$release:/release" --volume "$STATE_DIR:/var/lib/spinup" \
    "$SPINUP_BACKEND_IMAGE" python -m gpu_host.models.repository --target gpu \
    --out /release/model_repository --gpu "$gpu" --engine-cache "$ENGINE_CACHE" "${decision[@]}"
}

# Triton as spinup-triton.service runs it (the same flags; a test holds them together), but
# detached, under another name, on the release being built, and loading every model at start
# (the unit loads none: the backend asks for its models): each is verified, its engines built.
start_triton_once() {
  local release=$1
  docker rm --force "$TRITON_INIT_NAME" >/dev/null 2>&1 || true
  docker run --detach --rm --name "$TRITON_INIT_NAME" --pull never --network host --gpus all \
    --volume /dev/shm:/dev/shm --ulimit memlock=-1 --ulimit stack=67108864 "${DOCKER_LOG_OPTS[@]}" \
    --volume "$release/model_repository:/models:ro" \
    --volume "$FAKE_ROOT$ENGINE_CACHE:$ENGINE_CACHE" \
    "$SPINUP_TRITON_IMAGE" tritonserver --model-repository=/models \
    --http-address=127.0.0.1 --http-port=8000 --grpc-address=127.0.0.1 --grpc-port=8001 \
    --metrics-address=127.0.0.1 --metrics-port=8002 --strict-readiness=true --log-verbose=0 \
    --model-control-mode=explicit '--load-model=*' >/dev/null
  trap stop_triton_once EXIT
  local waited=0
  # Ready (strict readiness: every model loaded, its warm-up run, so its engines built).
  until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
    "$TRITON_READY_URL" 2>/dev/null; do
    docker container inspect "$TRITON_INIT_NAME" >/dev/null 2>&1 ||
      die "Triton exited while loading the models (its log is in the journal)"
    ((waited < TRITON_READY_TIMEOUT_S)) ||
      die "Triton was not ready within $TRITON_READY_TIMEOUT_S s"
    sleep "$TRITON_POLL_S"
    waited=$((waited + TRITON_POLL_S))
  done
}

stop_triton_once() {
  trap - EXIT
  docker stop --time 20 "$TRITON_INIT_NAME" >/dev/null 2>&1 || true
}

# The verification (python -m gpu_host.models.verify) against that Triton, in the backend
# image: its exit status says whether every model passed; the decision file is written in
# either case (and not at all when Triton could not be asked).
verify_models() {
  docker run --rm --pull never --network host --user 0:0 --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true --tmpfs /tmp "${DOCKER_LOG_OPTS[@]}" \
    --volume "$STATE_DIR:/var/lib/spinup" "$SPINUP_BACKEND_IMAGE" \
    python -m gpu_host.models.verify --target gpu --url "$TRITON_GRPC" \
    --decide "/var/lib/spinup/$DECISION"
}

# decision_list KEY: the models the decision file lists under KEY (fell_back, failing).
decision_list() {
  python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))[sys.argv[2]]))' \
    "$STATE_DIR/$DECISION" "$1"
}

prepare_models() {
  local release=$1 gpu round fell_back failing
  gpu=$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader) ||
    die "nvidia-smi cannot read the GPU"
  [[ -n $gpu ]] || die "nvidia-smi lists no GPU"
  log "GPU: ${gpu%%$'\n'*}"
  install -d -m 0755 "$STATE_DIR" "$FAKE_ROOT$ENGINE_CACHE"
  generate_repository "$release" "$gpu"
  for ((round = 1; ; round++)); do
    start_triton_once "$release"
    rm -f "$STATE_DIR/$DECISION"
    if verify_models; then log "every model passed the verification"; fi
    stop_triton_once
    [[ -s $STATE_DIR/$DECISION ]] || die "the verification decided nothing"
    failing=$(decision_list failing)
    fell_back=$(decision_list fell_back)
    [[ -z $failing ]] || log "failing the verification (served as they are): $failing"
    [[ -n $fell_back ]] || break
    ((round < VERIFY_ROUNDS)) || die "models still falling back after $round rounds: $fell_back"
    log "off in FP16, regenerated in FP32: $fell_back"
    generate_repository "$release" "$gpu" --precisions
  done
  log "precisions decided: $STATE_DIR/$DECISION"
}

activate() {
  local target=$1
  ln -sfn "$target" "$CURRENT.next"
  mv -T "$CURRENT.next" "$CURRENT"
}

prune_releases() {
  local active old
  active=$(readlink -f "$CURRENT")
  # Newest first; keep the active one and the previous (to roll back by hand).
  ls -1dt "$RELEASES"/*/ 2>/dev/null | tail -n +$((KEEP_RELEASES + 1)) | while read -r old; do
    [[ "${old%/}" == "$active" ]] || rm -rf "$old"
  done
}

cmd_initialize() {
  load_settings
  local url id target
  url=$(retry "reading the release parameter" aws ssm get-parameter --region "$AWS_REGION" \
    --name "$SPINUP_SSM_PREFIX/release" --query Parameter.Value --output text)
  id=$(release_id "$url")
  target=$RELEASES/$id
  log "initializing with release $id"
  configure_host
  ensure_system_packages
  install -d -m 0755 "$RELEASES"
  [[ -d $target ]] || build_release "$url" "$target"
  activate "$target"
  configure_nginx "$target"
  install_units "$target"
  prune_releases
  log "initialized: release $id"
}

cmd_install() {
  local unpacked=${1:?usage: bootstrap.sh install DIR}
  [[ -d $unpacked/systemd && -d $unpacked/gpu_host && -d $unpacked/lambdas ]] || die "$unpacked is not an unpacked release"
  # The agent runs on the system Python (3.9 on Amazon Linux 2023) and needs boto3, which
  # the minimal image the ECS AMI is built from does not have.
  if ! python3 -c 'import boto3' 2>/dev/null; then
    log "installing boto3 for the lifecycle agent"
    pkg_install python3-boto3
  fi
  install_units "$unpacked"
  # The instance does not serve yet: the launch hook holds it until the agent has
  # initialized it (entering the warm pool) or also started it (going into service).
  # Started without waiting so that cloud-init finishes and the boot is not held up.
  systemctl enable spinup-lifecycle.service
  systemctl start --no-block spinup-lifecycle.service
}

main() {
  case "${1:-}" in
  install) cmd_install "${2:-}" ;;
  initialize) cmd_initialize ;;
  *) die "usage: bootstrap.sh install DIR | initialize" ;;
  esac
}

# Sourcing (tests) defines the functions without running anything.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
