#!/bin/bash
# First boot of the GPU instance (EC2 user data, run once by cloud-init).
#
# Fetches the release the SSM parameter "$SPINUP_SSM_PREFIX/release" names and hands over to
# that release's bootstrap.sh, which installs the systemd units and starts spinup.target.
# Later boots never come back here: spinup-release.service keeps the release current.
# The CDK app prepends: export SPINUP_SSM_PREFIX=... AWS_REGION=...
set -euo pipefail

: "${SPINUP_SSM_PREFIX:?}" "${AWS_REGION:?}"
readonly ATTEMPTS=60 PAUSE_S=10

install -d -m 0755 /etc/spinup
printf 'SPINUP_SSM_PREFIX=%s\nAWS_REGION=%s\n' "$SPINUP_SSM_PREFIX" "$AWS_REGION" \
  >/etc/spinup/bootstrap.env

work=$(mktemp -d /var/tmp/spinup-first-boot.XXXXXX)
# The Elastic IP is associated a moment after launch; until then there may be no route out.
for ((attempt = 1; ; attempt++)); do
  if url=$(aws ssm get-parameter --region "$AWS_REGION" --name "$SPINUP_SSM_PREFIX/release" \
    --query Parameter.Value --output text) &&
    aws s3 cp --region "$AWS_REGION" --only-show-errors "$url" "$work/release.zip"; then
    break
  fi
  if ((attempt >= ATTEMPTS)); then
    echo "spinup: could not fetch the release after $ATTEMPTS attempts" >&2
    exit 1
  fi
  sleep "$PAUSE_S"
done

python3 -m zipfile -e "$work/release.zip" "$work/release"
exec bash "$work/release/gpu_host/bootstrap/bootstrap.sh" install "$work/release"
