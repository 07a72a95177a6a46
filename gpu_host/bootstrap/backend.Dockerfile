# The Spinup backend (and the host's Python tools: render_config, the watchdog, the model
# repository's generator and its verification), built at initialize by bootstrap.sh from the
# release directory: Python 3.11 from a digest-pinned base (images.env) and the hash-locked
# dependencies. The host's own Python (Amazon Linux 2023's system Python) is 3.9.
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every package named with its hash; wheels only (nothing compiled on the host).
COPY gpu_host/bootstrap/requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --only-binary=:all: --no-deps --retries 5 --timeout 60 \
        -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

WORKDIR /opt/spinup/app
COPY frontend/js/protocol.json frontend/js/protocol.json
COPY lambdas lambdas
COPY gpu_host gpu_host

# Unprivileged by default; render_config and the watchdog run with --user 0 (they write
# /etc/spinup and /var/lib/spinup-watchdog).
USER 65534:65534
CMD ["python", "-m", "gpu_host.backend", "--host", "127.0.0.1", "--port", "8080"]
