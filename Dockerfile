# sluice: build on Debian 12, run on Debian 12 slim as a non-root user.
#   docker build -t sluice .
#   docker run -v $PWD/config:/etc/sluice:ro sluice
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
RUN apt-get update \
 && apt-get install -y --no-install-recommends librdkafka1 libevent-2.1-7 libevent-pthreads-2.1-7 libevent-openssl-2.1-7 \
      libhiredis0.14 libpq5 libcurl4 libjansson4 libssl3 libprotobuf-c1 libpcre2-8-0 libyaml-0-2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/sluice --create-home sluice
COPY --from=build /build/sluice /build/kafka-committed /usr/local/bin/
USER sluice
WORKDIR /var/lib/sluice
# The configuration is mounted at /etc/sluice; file sinks write under /var/lib/sluice.
ENTRYPOINT ["/usr/local/bin/sluice", "run"]
CMD ["-c", "/etc/sluice/sluice.json"]
