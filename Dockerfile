# The Vraagbaak API (and the ingest job): FastAPI on CPU, talking to Qdrant and vLLM over HTTP.
# In production the API only embeds the questions (and the ingest job the chunks) on the CPU;
# generation runs in vLLM on the GPUs, so this image carries the CPU build of torch.
#
#   docker build -t vraagbaak:0.1.0 .
#
# Air-gapped builders: point PIP_INDEX_URL / TORCH_INDEX_URL at the internal mirror.
FROM python:3.11.9-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/vraagbaak \
    PATH=/opt/vraagbaak/bin:$PATH

RUN python -m venv /opt/vraagbaak \
 && pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY vraagbaak_core ./vraagbaak_core
COPY retrieval ./retrieval
COPY ingest ./ingest
COPY serving ./serving
COPY configs ./configs
RUN pip install . \
 && groupadd --gid 10001 vraagbaak \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vraagbaak \
 && mkdir -p /var/lib/vraagbaak/audit /var/lib/vraagbaak/ingest /etc/vraagbaak /models \
 && chown -R 10001:10001 /var/lib/vraagbaak

# Offline: weights come from /models (verified with `vraagbaak models verify`), never a hub.
# Relative paths in the settings (prompt templates) resolve under /app.
ENV HF_HUB_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/tmp/huggingface \
    HOME=/tmp \
    VRAAGBAAK_PROMPTS__TEMPLATES_DIR=/app/configs/prompts

USER 10001:10001
EXPOSE 8000
VOLUME ["/var/lib/vraagbaak"]
ENTRYPOINT ["vraagbaak"]
CMD ["serve", "--config", "/etc/vraagbaak/config.yaml"]
