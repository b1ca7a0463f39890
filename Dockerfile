# egme-ord: multi-stage build; the runtime image runs as uid/gid 10001, with tini as PID 1.
#   docker build -t egme-ord .
#   docker run -d --name egme-ord-eda --stop-timeout 120 --restart on-failure \
#     -v /etc/egme-ord:/etc/egme-ord:ro -v egme-ord-eda:/var/lib/egme-ord \
#     -p 127.0.0.1:9464:9464 -e EGME_ORD_SEND_KEY_PASSPHRASE \
#     egme-ord run --config /etc/egme-ord/eda.toml
# One data path everywhere: /var/lib/egme-ord (the config's store and work_dir live under it).
# Keys under /etc/egme-ord/keys must be readable by uid 10001 (chown 10001 KEY; chmod 600 KEY).
# Inside the container metrics must listen on every address (metrics_listen = ":9464"): publish
# the port on 127.0.0.1 only, as above. `--stop-timeout 120` gives a cycle in flight the time the
# systemd unit gives it (TimeoutStopSec=120s); Docker's default of 10 s would cut it short.
# Base images: pin them by digest in the release process (rust:1.89-bookworm@sha256:…,
# debian:12.12-slim@sha256:…); this repository cannot look digests up (no registry access).
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY core ./core
COPY src ./src
COPY tests ./tests
COPY config ./config
COPY docs ./docs
COPY fixtures ./fixtures
COPY bench ./bench
COPY README.md ARCHITECTURE.md ./
# OpenSSL is built from source with libssh2 (the ssh2 crate's vendored-openssl): no -dev packages.
RUN cargo build --release --locked --bin egme-ord

FROM debian:12.12-slim
LABEL org.opencontainers.image.title="egme-ord" \
      org.opencontainers.image.description="SGL meter-data exchange between MOBI.E (EGME) and the ORDs" \
      org.opencontainers.image.vendor="MOBI.E" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="/usr/share/doc/egme-ord/README.md"
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 egme-ord \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/egme-ord --shell /usr/sbin/nologin egme-ord \
 && mkdir -p /etc/egme-ord /var/lib/egme-ord \
 && chown 10001:10001 /var/lib/egme-ord && chmod 0700 /var/lib/egme-ord
COPY --from=build /src/target/release/egme-ord /usr/bin/egme-ord
COPY config/*.toml config/egme-ord@.service /usr/share/egme-ord/examples/
COPY config/registry /usr/share/egme-ord/examples/registry/
COPY README.md /usr/share/doc/egme-ord/README.md
COPY docs /usr/share/doc/egme-ord/docs/
# Config (with keys and known_hosts) read-only; data (store, work folders) persistent.
VOLUME ["/etc/egme-ord", "/var/lib/egme-ord"]
EXPOSE 9464
USER 10001:10001
WORKDIR /var/lib/egme-ord
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=1m --timeout=10s --start-period=2m --retries=3 \
  CMD ["/usr/bin/egme-ord", "probe", "http://127.0.0.1:9464/healthz"]
# tini forwards SIGTERM so that `docker stop` stops egme-ord cleanly.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/egme-ord"]
CMD ["run", "--config", "/etc/egme-ord/egme-ord.toml"]
