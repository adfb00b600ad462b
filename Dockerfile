# syntax=docker/dockerfile:1
# One image for every service: `cem serve ingest|projections|satisfaction|query-api`, or `cem up` for the
# embedded mode. Configuration comes only from the environment (CEM_*, see kernel/settings.py): no
# credentials are baked in. Build: docker build -t cem:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: compile any wheel that lacks a binary for this platform, into a self-contained venv ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/cem
ENV PATH=/opt/cem/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
COPY cem ./cem
COPY kernel ./kernel
COPY services ./services
COPY schemas ./schemas
COPY bench ./bench
# A regular (not editable) install: the runtime stage needs the venv only, not /src.
RUN --mount=type=cache,target=/root/.cache/pip pip install .

# -- runtime: the venv, an unprivileged user, nothing else -------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/cem/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CEM_DATA_DIR=/var/lib/cem \
    HEALTHCHECK_PORT=8000
# A fixed numeric uid, so Kubernetes can enforce runAsNonRoot without resolving names.
RUN groupadd --system --gid 10001 cem \
    && useradd --system --uid 10001 --gid cem --home-dir /var/lib/cem --shell /usr/sbin/nologin cem \
    && mkdir -p /var/lib/cem \
    && chown cem:cem /var/lib/cem
COPY --from=build /opt/cem /opt/cem
USER 10001:10001
WORKDIR /var/lib/cem
# 8000: HTTP services (ingest, query-api); 8001: health endpoint of the workers (projections, satisfaction).
EXPOSE 8000 8001
# Workers serve /health on --health-port: run them with HEALTHCHECK_PORT=8001 (compose sets its own checks).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('HEALTHCHECK_PORT', '8000') + '/health', timeout=4)"]
ENTRYPOINT ["cem"]
CMD ["--help"]
