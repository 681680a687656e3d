# Redis for deploy/compose.yaml, built from the local Debian base (no registry here).
# Append-only file on, data in /data (a volume), runs as the redis user.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
VOLUME /data
EXPOSE 6379
HEALTHCHECK --interval=5s --timeout=3s --retries=5 CMD ["redis-cli", "-p", "6379", "ping"]
ENTRYPOINT ["redis-server"]
CMD ["--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", \
     "--appendfsync", "everysec", "--dir", "/data"]
