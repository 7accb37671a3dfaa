# The tidewatch worker, CLI and demo producer in one image.
# Installed editable from /app on purpose: the package reads schemas/ and clickhouse/ next to
# the source tree (stream/events.py, stream/store/migrations.py), and they are not package data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY schemas ./schemas
COPY clickhouse ./clickhouse
RUN pip install -e . \
    && useradd --create-home --uid 10001 tidewatch \
    && mkdir -p /data \
    && chown tidewatch /data

USER tidewatch
ENV TIDEWATCH_WORKER__DATA_DIR=/data/worker \
    TIDEWATCH_STORE__PATH=/data/chdb
VOLUME ["/data"]
EXPOSE 6066
CMD ["tidewatch", "worker"]
