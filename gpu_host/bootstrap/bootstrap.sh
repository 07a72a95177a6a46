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
#                              the hash-locked dependencies), the Triton image, the model
#                              repository. Every network step goes through `retry` (backoff,
#                              a time limit per try, a bounded number of tries).
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
# apt waits this long for another apt (unattended-upgrades at boot) to release its lock.
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

install_units() {
  local release=$1 changed=0 unit
  for unit in "$release"/systemd/*.service "$release"/systemd/*.target "$release"/systemd/*.timer; do
    if ! cmp -s "$unit" "$UNIT_DIR/${unit##*/}"; then
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

ensure_system_packages() {
  if command -v nginx >/dev/null; then
    return
  fi
  log "installing nginx"
  retry "apt-get update" apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT_S" -q update
  retry "installing nginx" apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT_S" -q \
    install -y --no-install-recommends nginx
  # Our site is the default server on the origin port; the distro's would shadow it.
  rm -f "$FAKE_ROOT/etc/nginx/sites-enabled/default"
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
  retry "pulling the Triton image" env SPINUP_MODEL_REPOSITORY="$partial/model_repository" \
    docker compose --project-name spinup --env-file "$partial/gpu_host/bootstrap/images.env" \
    --file "$partial/gpu_host/bootstrap/docker-compose.yml" pull --quiet triton
  # The model repository, from the release's specs, inside the image (the host's own Python
  # is too old), offline.
  docker run --rm --pull never --network none --user "$(id -u):$(id -g)" \
    --volume "$partial:/release" --workdir /opt/spinup/app "$SPINUP_BACKEND_IMAGE" \
    python -m gpu_host.models.repository --target gpu --out /release/model_repository
  chmod -R a+rX "$partial"
  mv -T "$partial" "$target"
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
  ensure_system_packages
  install -d -m 0755 "$RELEASES"
  [[ -d $target ]] || build_release "$url" "$target"
  activate "$target"
  install_units "$target"
  prune_releases
  log "initialized: release $id"
}

cmd_install() {
  local unpacked=${1:?usage: bootstrap.sh install DIR}
  [[ -d $unpacked/systemd && -d $unpacked/gpu_host && -d $unpacked/lambdas ]] || die "$unpacked is not an unpacked release"
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
