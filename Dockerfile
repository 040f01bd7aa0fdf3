# syntax=docker/dockerfile:1
# Build: docker build -t azure-standby-pool-exporter .
# Run:   docker run -p 9863:9863 -v $PWD/config.yaml:/etc/standby-pool-exporter/config.yaml:ro azure-standby-pool-exporter

FROM python:3.11-slim AS build
WORKDIR /src
# pip pinned, and every dependency at the version constraints.txt pins (tools/pin_constraints.py):
# the same build twice gives the same packages.
ARG PIP_VERSION=26.3
COPY pyproject.toml README.md constraints.txt ./
COPY exporter ./exporter
RUN python -m pip install --no-cache-dir "pip==${PIP_VERSION}" \
 && python -m pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 exporter \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY config.example.yaml /etc/standby-pool-exporter/config.yaml
USER 10001:10001
EXPOSE 9863
ENTRYPOINT ["standby-pool-exporter"]
CMD ["--config.file=/etc/standby-pool-exporter/config.yaml"]
