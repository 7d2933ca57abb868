# syntax=docker/dockerfile:1
# policyd container image: `policyd serve` on 0.0.0.0:50051 as a non-root user.
#
#   docker build -t policyd:dev .
#   docker run --rm -p 50051:50051 policyd:dev            # offline default policy
#   docker run --rm -p 50051:50051 -v "$PWD/policy.yaml:/etc/policyd/policy.yaml:ro" \
#     -e POLICYD_CONFIG=/etc/policyd/policy.yaml -e OPENAI_API_KEY policyd:dev
#
# Stage 1 builds a virtualenv with policyd and its dependencies (all of them ship wheels,
# so no compiler is needed even here); stage 2 copies only that virtualenv onto a fresh
# slim base, so the final image has no build tools, no pip cache and no source tree.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ONLY_BINARY=grpcio,pydantic-core,protobuf
WORKDIR /src
RUN python -m venv /opt/policyd
COPY pyproject.toml README.md ./
COPY policyd ./policyd
COPY plugins ./plugins
RUN /opt/policyd/bin/pip install --no-cache-dir . \
    && /opt/policyd/bin/policyd --version

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="policyd" \
      org.opencontainers.image.description="LLM routing policy engine served over gRPC" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric UID/GID, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 policyd \
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
# Cache and ledger live in /var/lib/policyd; /tmp is writable even with a read-only root.
VOLUME ["/var/lib/policyd", "/tmp"]
EXPOSE 50051
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["policyd-health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["policyd", "serve"]
