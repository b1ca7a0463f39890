# egme-ord: multi-stage build; the runtime image runs as a non-root user.
#   docker build -t egme-ord .
#   docker run -d --name egme-ord-eda \
#     -v /etc/egme-ord:/etc/egme-ord:ro -v egme-ord-eda:/var/lib/egme-ord/eda \
#     -e EGME_ORD_SEND_KEY_PASSPHRASE egme-ord run --config /etc/egme-ord/eda.toml
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY config ./config
COPY docs ./docs
COPY fixtures ./fixtures
RUN cargo build --release --locked --bin egme-ord

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates tini && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 egme-ord \
 && useradd --system --uid 10001 --gid egme-ord --home-dir /var/lib/egme-ord --shell /usr/sbin/nologin egme-ord \
 && mkdir -p /etc/egme-ord /var/lib/egme-ord && chown egme-ord:egme-ord /var/lib/egme-ord && chmod 0700 /var/lib/egme-ord
COPY --from=build /src/target/release/egme-ord /usr/local/bin/egme-ord
COPY config/*.toml config/egme-ord@.service /usr/share/egme-ord/examples/
COPY config/registry /usr/share/egme-ord/examples/registry/
# Config (with keys and known_hosts) read-only; data (store, work folders) persistent.
VOLUME ["/etc/egme-ord", "/var/lib/egme-ord"]
USER egme-ord
WORKDIR /var/lib/egme-ord
# tini forwards SIGTERM so that `docker stop` stops egme-ord cleanly.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/egme-ord"]
CMD ["run", "--config", "/etc/egme-ord/egme-ord.toml"]
