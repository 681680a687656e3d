# hilanderd image: build on Debian bookworm, run on a slim bookworm with only the shared
# libraries the binaries link (checked with ldd). See deploy/README.md.
#
#   make image        # docker build --network host -t hilander:dev .
#   docker run --rm --network host -e HILANDER_PORT=18080 hilander:dev
#
# Settings are the HILANDER_* environment variables (hilanderd --help lists them); flags
# given after the image name are passed to hilanderd.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config libopenblas-dev libjansson-dev libmicrohttpd-dev \
      libuv1-dev libhiredis-dev libxxhash-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DHL_WERROR=ON -DHL_BUILD_TESTS=OFF \
      -DHL_BUILD_BENCH=OFF \
 && cmake --build /build -j 2 --target hilanderd hilander \
 && mkdir -p /out/usr/local/bin /out/opt/hilander/models \
 && install -s -m 0755 /build/server/hilanderd /build/cli/hilander /out/usr/local/bin/ \
 && if [ -d models ]; then find models -maxdepth 1 -type f \( -name '*.hlm' -o -name '*.md' \) \
      -exec install -m 0644 {} /out/opt/hilander/models/ \; ; fi

FROM debian:bookworm-slim
# libopenblas0-pthread, libjansson4, libmicrohttpd12, libuv1, libhiredis0.14 and libxxhash0
# are what `ldd hilanderd` names (gnutls, gfortran and the rest come as their dependencies).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopenblas0-pthread libjansson4 libmicrohttpd12 libuv1 libhiredis0.14 libxxhash0 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old \
      /var/lib/dpkg/*-old /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 hilander \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin hilander
COPY --from=build /out/ /
# The default model: `make image` passes universal when models/universal.hlm ships, else
# none (the model-free mode, always available).
ARG DEFAULT_MODEL=none
ENV HILANDER_LISTEN=0.0.0.0 \
    HILANDER_PORT=8080 \
    HILANDER_MODEL_DIR=/opt/hilander/models \
    HILANDER_DEFAULT_MODEL=${DEFAULT_MODEL}
USER 10001:10001
WORKDIR /opt/hilander
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
  CMD ["hilanderd", "--healthcheck"]
ENTRYPOINT ["hilanderd"]
