# syntax=docker/dockerfile:1
# policyd container image: `policyd serve` on 0.0.0.0:50051 as a non-root user.
#
#   make image                                   # podman, on a base made from Debian's packages
#   docker build -t policyd:dev .                # or any builder, on python:3.11-slim-bookworm
#   docker run --rm -p 50051:50051 policyd:dev   # offline default policy
#
# Stage 1 installs the locked dependencies (image-requirements.txt: exact versions, hashes,
# wheels only, so no compiler) into a virtualenv, in a layer of their own, then policyd
# itself; pip, setuptools and wheel are removed from it afterwards. Stage 2 copies only
# that virtualenv onto a fresh base: no build tools, no pip, no caches, no source tree.
# The listen address has one source, POLICYD_LISTEN, read by `policyd serve` and by the
# HEALTHCHECK alike: set it (not `--listen`) to move the port.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 \
    PIP_PROGRESS_BAR=off \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
RUN python3 -m venv /opt/policyd
# Dependencies first: a source change reuses this layer instead of downloading ~50 wheels.
COPY image-requirements.txt ./
RUN /opt/policyd/bin/pip install --no-deps --require-hashes --only-binary=:all: -r image-requirements.txt
COPY pyproject.toml README.md ./
COPY policyd ./policyd
COPY plugins ./plugins
RUN /opt/policyd/bin/pip install --no-deps --no-index --no-build-isolation . \
    && /opt/policyd/bin/pip uninstall --yes setuptools wheel \
    && /opt/policyd/bin/python -m pip uninstall --yes pip \
    && /opt/policyd/bin/policyd --version

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="policyd" \
      org.opencontainers.image.description="LLM routing policy engine served over gRPC" \
      org.opencontainers.image.licenses="Apache-2.0"
# No pip or setuptools in the final image: drop the base's own (Debian's wheels for venv,
# or the python image's site-packages), then a fixed numeric UID/GID, so Kubernetes'
# runAsNonRoot can verify it without /etc/passwd.
RUN if dpkg-query -W python3-pip-whl >/dev/null 2>&1; then \
        dpkg --purge python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl; \
    else \
        python3 -m pip uninstall --yes --root-user-action=ignore pip setuptools wheel; \
    fi \
    && groupadd --system --gid 10001 policyd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/policyd --shell /usr/sbin/nologin policyd \
    && mkdir -p /var/lib/policyd /etc/policyd \
    && chown 10001:10001 /var/lib/policyd \
    && chmod 0700 /var/lib/policyd
COPY --from=build /opt/policyd /opt/policyd
ENV PATH=/opt/policyd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/policyd \
    POLICYD_LISTEN=0.0.0.0:50051 \
    POLICYD_DATA_DIR=/var/lib/policyd
USER 10001:10001
WORKDIR /var/lib/policyd
# Cache and ledger live in /var/lib/policyd (the daemon refuses to start when it is not
# writable); /tmp is writable even with a read-only root.
VOLUME ["/var/lib/policyd", "/tmp"]
EXPOSE 50051
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["policyd-health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["policyd", "serve"]
