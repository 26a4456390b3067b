# The orchestrator image: one image for `orchestrator worker`, `orchestrator ingress` and the
# one-shot `orchestrator migrate` / `orchestrator search-attributes register` (see docker-compose.yml).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed non-root uid, and a home the named volume inherits ownership from on first use.
RUN groupadd --system --gid 10001 orchestrator \
    && useradd --system --uid 10001 --gid orchestrator \
        --home-dir /var/lib/orchestrator --no-create-home --shell /usr/sbin/nologin orchestrator \
    && install -d -o orchestrator -g orchestrator -m 0750 /var/lib/orchestrator

# Only what the distribution needs; the source is removed once installed.
WORKDIR /src
COPY pyproject.toml ./
COPY workflows ./workflows
COPY activities ./activities
COPY db ./db
COPY workers ./workers
COPY emulators ./emulators
RUN pip install --no-cache-dir . \
    && rm -rf /src

USER orchestrator
WORKDIR /var/lib/orchestrator
ENV ORCHESTRATOR_HOME=/var/lib/orchestrator

# 8080: ingress (webhooks, approval links, /healthz); 9464: Prometheus metrics.
EXPOSE 8080 9464
CMD ["orchestrator", "worker"]
