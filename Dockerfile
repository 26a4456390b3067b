# The orchestrator image: one image for `orchestrator worker`, `orchestrator ingress`,
# `orchestrator health` and the one-shot `orchestrator migrate` /
# `orchestrator search-attributes register` (see docker-compose.yml and docs/deployment.md).
# Runtime dependencies only, at the versions and hashes of requirements/runtime.txt: no
# embedded servers, emulators, test or lint tools (those are the `dev` extra).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A fixed non-root uid (secret files mounted by compose must be readable by it), and a
# home the named volume inherits ownership from on first use.
RUN groupadd --system --gid 10001 orchestrator \
    && useradd --system --uid 10001 --gid orchestrator \
        --home-dir /var/lib/orchestrator --no-create-home --shell /usr/sbin/nologin orchestrator \
    && install -d -o orchestrator -g orchestrator -m 0750 /var/lib/orchestrator

WORKDIR /src
# The locked dependencies first (a layer that changes only with the lock), each file
# checked against its hash; then the project itself, with nothing left to resolve.
COPY requirements/runtime.txt requirements/build.txt ./requirements/
RUN pip install --require-hashes -r requirements/build.txt -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY activities ./activities
COPY db ./db
COPY workers ./workers
COPY ingress ./ingress
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf /src

USER orchestrator
WORKDIR /var/lib/orchestrator
ENV ORCHESTRATOR_HOME=/var/lib/orchestrator

# 8080: ingress (webhooks, approval links, /healthz); 9464: Prometheus metrics.
EXPOSE 8080 9464
CMD ["orchestrator", "worker"]
