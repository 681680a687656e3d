# nginx in front of the hilanderd replicas (deploy/compose.yaml), built from the local Debian
# base (no registry here). The configuration is mounted: deploy/nginx.conf at
# /etc/nginx/nginx.conf and the per-network upstream/listen files at /etc/nginx/hilander/.
# Runs as www-data (ports above 1024); pid and temporary files live under /var/lib/nginx.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
      /etc/nginx/sites-enabled/* \
 && mkdir -p /var/lib/nginx/tmp && chown -R www-data:www-data /var/lib/nginx
USER www-data
EXPOSE 8080
STOPSIGNAL SIGQUIT
ENTRYPOINT ["nginx", "-e", "stderr", "-p", "/var/lib/nginx/", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"]
