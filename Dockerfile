# sluice: build on Debian 12, run on Debian 12 slim as a non-root user.
#   docker build -t sluice .
#   docker run -v $PWD/config:/etc/sluice:ro -p 9645:9645 sluice          (sluice run)
#   docker run -v $PWD/config:/etc/sluice:ro sluice check                  (validate and exit)
# The image has no HEALTHCHECK: orchestrators probe the health listener (health.listen,
# GET /healthz and /readyz on 9645) instead; see deploy/ and the README.
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      librdkafka-dev libevent-dev libhiredis-dev libpq-dev libcurl4-openssl-dev libjansson-dev libssl-dev \
      protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev libpcre2-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY lib ./lib
COPY router ./router
COPY sinks ./sinks
COPY tools ./tools
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target sluice kafka-committed

FROM debian:12-slim
# docker build --build-arg VERSION=... --build-arg REVISION=$(git rev-parse HEAD) -t sluice .
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Consumes Kafka data products and pushes every change into Redis, PostgreSQL, webhooks and HTTP APIs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:12-slim"
RUN apt-get update \
 && apt-get install -y --no-install-recommends librdkafka1 libevent-2.1-7 libevent-pthreads-2.1-7 libevent-openssl-2.1-7 \
      libhiredis0.14 libpq5 libcurl4 libjansson4 libssl3 libprotobuf-c1 libpcre2-8-0 libyaml-0-2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/sluice --create-home sluice
COPY --from=build /build/sluice /build/kafka-committed /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/sluice
# The configuration is mounted at /etc/sluice (sluice.json and its sinks_dir); file sinks write
# under /var/lib/sluice. -c overrides SLUICE_CONFIG.
ENV SLUICE_CONFIG=/etc/sluice/sluice.json
# 9645: the health listener (health.listen "0.0.0.0:9645": /healthz, /readyz, /metrics, no
# token). The admin API (admin.listen) stays on 127.0.0.1:9644 inside the container unless the
# configuration says otherwise; publish it only with admin.token set.
EXPOSE 9645
ENTRYPOINT ["sluice"]
CMD ["run"]
