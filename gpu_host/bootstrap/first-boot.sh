#!/bin/bash
# First boot of a GPU host (EC2 user data of the fleet's launch template, run once by
# cloud-init).
#
# Fetches the release the SSM parameter "$SPINUP_SSM_PREFIX/release" names and hands over to
# that release's bootstrap.sh, which installs the systemd units and the lifecycle agent and
# starts the agent. Nothing here serves: the instance is held by the group's launch hook
# (entering the warm pool, or going straight into service when the pool is empty) until the
# agent completes it (gpu_host/bootstrap/lifecycle.py). If this script fails, the agent never
# runs, the hook times out with its default result (ABANDON) and the group replaces the
# instance. Later boots never come back here: spinup-lifecycle.service runs at every boot.
# The CDK app prepends: export SPINUP_SSM_PREFIX=... AWS_REGION=...
#
# The host image is the Amazon ECS GPU-optimized Amazon Linux 2023 AMI, built from AL2023's
# minimal image, which is not known to include the AWS CLI: it is installed here, from the
# distro's repositories (dnf), when missing. Everything else is bootstrap.sh's.
set -euo pipefail

: "${SPINUP_SSM_PREFIX:?}" "${AWS_REGION:?}"
readonly ATTEMPTS=60 PAUSE_S=10

install -d -m 0755 /etc/spinup
printf 'SPINUP_SSM_PREFIX=%s\nAWS_REGION=%s\n' "$SPINUP_SSM_PREFIX" "$AWS_REGION" \
  >/etc/spinup/bootstrap.env

# The network (and the instance role's credentials) may need a moment after launch.
# attempt WHAT COMMAND...: COMMAND until it succeeds, ATTEMPTS times at most.
attempt() {
  local what=$1 try
  shift
  for ((try = 1; ; try++)); do
    if "$@"; then
      return 0
    fi
    if ((try >= ATTEMPTS)); then
      echo "spinup: $what failed after $ATTEMPTS attempts" >&2
      exit 1
    fi
    sleep "$PAUSE_S"
  done
}

if ! command -v aws >/dev/null; then
  # dnf waits for another dnf's lock; `timeout` bounds each attempt.
  attempt "installing the AWS CLI" timeout 900 dnf -q -y install awscli-2
fi

fetch_release() {
  local url
  url=$(aws ssm get-parameter --region "$AWS_REGION" --name "$SPINUP_SSM_PREFIX/release" \
    --query Parameter.Value --output text) &&
    aws s3 cp --region "$AWS_REGION" --only-show-errors "$url" "$work/release.zip"
}

work=$(mktemp -d /var/tmp/spinup-first-boot.XXXXXX)
attempt "fetching the release" fetch_release

python3 -m zipfile -e "$work/release.zip" "$work/release"
exec bash "$work/release/gpu_host/bootstrap/bootstrap.sh" install "$work/release"
