# One image for every process type; each runs with a different command
# (see docker-compose.yml and the Procfile):
#   web (default)  uvicorn ingress.app:create_app --factory ...
#   system         dramatiq workers.pools.system --queues system ...
#   ticker         python -m workers.ticker
#   migrate        python -m ingress migrate   (one-shot, before the others)
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The Procfile binds 127.0.0.1, which is unreachable from outside a container.
ENV WEB_HOST=0.0.0.0

WORKDIR /app

COPY pyproject.toml requirements-runtime.txt Procfile ./
COPY contracts ./contracts
COPY ingress ./ingress
COPY bus ./bus
COPY pipelines_catalog ./pipelines_catalog
COPY workers ./workers
COPY sql ./sql
COPY devservers ./devservers
# the example pipelines catalog (CATALOG_DIR) and its Python nodes (PIPELINE_MODULES=catalog)
COPY catalog ./catalog

# pyproject.toml names README.md as the readme; an empty one keeps the build from
# depending on it. Only the runtime dependencies, at the locked versions and hashes
# (requirements-runtime.txt, made by `make lock`); no [dev] or [local] extras.
RUN touch README.md \
    && pip install --require-hashes -r requirements-runtime.txt \
    && pip install --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info \
    && useradd --create-home --uid 10001 app \
    && mkdir -p /app/.data/artifacts && chown -R app /app/.data

USER app

EXPOSE 8000

# The Procfile's web command; `exec` makes uvicorn PID 1 so it gets SIGTERM.
CMD ["sh", "-c", "exec uvicorn ingress.app:create_app --factory --host ${WEB_HOST:-127.0.0.1} --port ${WEB_PORT:-8000} --no-access-log --loop uvloop --http ingress.http_protocol:HttpToolsWithHeadLimits --forwarded-allow-ips \"${FORWARDED_ALLOW_IPS:-}\""]
