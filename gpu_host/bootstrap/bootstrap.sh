#!/bin/bash
# Installs and updates the Spinup GPU host. Idempotent; safe to run at every boot.
#
#   bootstrap.sh install DIR   first boot (from first-boot.sh): install this script, the
#                              systemd units and the lifecycle agent from the unpacked release
#                              DIR, enable and start spinup-lifecycle.service. The agent
#                              (gpu_host/bootstrap/lifecycle.py) answers the Auto Scaling launch
#                              hook: it runs "initialize" once, and starts spinup.target only
#                              when the instance goes into service.
#   bootstrap.sh initialize    once per instance (from the agent): "update", then pull the
#                              container images, so that a start from the warm pool downloads
#                              nothing.
#   bootstrap.sh update        every start (spinup-release.service): make the installed release
#                              the one the SSM parameter "$SPINUP_SSM_PREFIX/release" names.
#
# Layout: /opt/spinup/releases/<asset hash>/{gpu_host,lambdas,systemd,pyproject.toml,.venv,
# model_repository,frontend/js/protocol.json (the socket protocol the backend loads)},
# /opt/spinup/current -> the active release, /etc/spinup/*.env, and the lifecycle agent's
# own copy of its modules in /usr/local/lib/spinup (it runs before any release is installed,
# on the system Python).
set -euo pipefail

readonly ROOT=/opt/spinup
readonly RELEASES=$ROOT/releases
readonly CURRENT=$ROOT/current
readonly SELF=/usr/local/sbin/spinup-bootstrap
readonly UNIT_DIR=/etc/systemd/system
readonly UV_VERSION=0.13.9
readonly PYTHON_VERSION=3.11
readonly KEEP_RELEASES=2
readonly AGENT_DIR=/usr/local/lib/spinup
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
readonly PULL_ATTEMPTS=4
# uv's interpreters and cache outside /root, so that the backend's DynamicUser can run them.
export UV_PYTHON_INSTALL_DIR=$ROOT/python UV_CACHE_DIR=/var/cache/spinup/uv
export DEBIAN_FRONTEND=noninteractive

log() { echo "spinup-bootstrap: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

load_settings() {
  # shellcheck source=/dev/null
  [[ -r /etc/spinup/bootstrap.env ]] && source /etc/spinup/bootstrap.env
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
  install -m 0755 "$release/gpu_host/bootstrap/bootstrap.sh" "$SELF"
  install_agent "$release" "$AGENT_DIR"
  if ((changed)); then systemctl daemon-reload; fi
}

ensure_system_packages() {
  if command -v nginx >/dev/null && [[ "$("$ROOT/bin/uv" --version 2>/dev/null)" == "uv $UV_VERSION" ]]; then
    return
  fi
  log "installing nginx and uv $UV_VERSION"
  apt-get update -q
  apt-get install -y -q --no-install-recommends nginx python3-venv
  # Our site is the default server on the origin port; the distro's would shadow it.
  rm -f /etc/nginx/sites-enabled/default
  python3 -m venv "$ROOT/tools"
  "$ROOT/tools/bin/pip" install --quiet "uv==$UV_VERSION"
  install -d "$ROOT/bin"
  ln -sfn "$ROOT/tools/bin/uv" "$ROOT/bin/uv"
}

build_release() {
  local url=$1 target=$2 partial="$2.partial"
  rm -rf "$partial"
  install -d "$partial"
  aws s3 cp --region "$AWS_REGION" --only-show-errors "$url" "$partial/release.zip"
  python3 -m zipfile -e "$partial/release.zip" "$partial"
  rm "$partial/release.zip"
  "$ROOT/bin/uv" venv --quiet --python "$PYTHON_VERSION" "$partial/.venv"
  # The project's pinned dependencies, read from pyproject.toml (the same pins as local mode).
  "$ROOT/bin/uv" pip install --quiet --python "$partial/.venv/bin/python" -r "$partial/pyproject.toml"
  (cd "$partial" && .venv/bin/python -m gpu_host.models.repository --target gpu --out model_repository)
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

cmd_update() {
  load_settings
  local url id target
  if ! url=$(aws ssm get-parameter --region "$AWS_REGION" --name "$SPINUP_SSM_PREFIX/release" \
    --query Parameter.Value --output text); then
    # No network or no SSM: boot what is installed rather than nothing.
    [[ -e $CURRENT ]] || die "no release installed and the release parameter is unreachable"
    log "release parameter unreachable; keeping $(readlink -f "$CURRENT")"
    return 0
  fi
  id=$(release_id "$url")
  target=$RELEASES/$id
  if [[ "$(readlink -f "$CURRENT" 2>/dev/null)" == "$target" && -d $target ]]; then
    return 0
  fi
  log "installing release $id"
  ensure_system_packages
  install -d -m 0755 "$RELEASES" /var/cache/spinup
  [[ -d $target ]] || build_release "$url" "$target"
  activate "$target"
  install_units "$target"
  prune_releases
  log "release $id active"
}

# The images spinup-triton.service runs, pulled now so that a start pulls nothing.
pull_images() {
  local attempt
  for ((attempt = 1; ; attempt++)); do
    if SPINUP_MODEL_REPOSITORY="$CURRENT/model_repository" docker compose --project-name spinup \
      --file "$CURRENT/gpu_host/bootstrap/docker-compose.yml" pull --quiet; then
      return 0
    fi
    ((attempt < PULL_ATTEMPTS)) || die "could not pull the images after $attempt attempts"
    log "pulling the images failed (attempt $attempt); trying again"
    sleep $((attempt * 15))
  done
}

cmd_initialize() {
  cmd_update
  [[ -e $CURRENT ]] || die "no release installed"
  pull_images
  log "initialized"
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
  update) cmd_update ;;
  *) die "usage: bootstrap.sh install DIR | initialize | update" ;;
  esac
}

# Sourcing (tests) defines the functions without running anything.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
