# Switchyard container image: built with Rust in one stage, run from a small Debian image as
# an unprivileged user. docker-compose.yml builds it (`docker compose up --build`).
#
#   docker build -t switchyard .
#   docker run --rm -v "$PWD/config/compose.toml:/etc/switchyard/switchyard.toml:ro" \
#       -e SWITCHYARD_ADMIN_PASSWORD=... -e SWITCHYARD_MONITOR_PASSWORD=... \
#       -e ACME_APP_PASSWORD=... -e GLOBEX_APP_PASSWORD=... -e OPS_PASSWORD=... \
#       switchyard check --config /etc/switchyard/switchyard.toml
# (every `${VAR}` the config names must be set: `check` says which is not)

ARG RUST_VERSION=1.95

# ---- build ---------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Profile-guided by default (scripts/pgo.sh: an instrumented build trained for a minute on
# synthetic backends inside this stage, then the release build with its profile): about a
# third less user CPU per statement than the plain build (docs/design.md), for twice the
# build time. `--build-arg PGO=0` builds plain. Should the training fail, the plain build
# is made instead and the log says so.
ARG PGO=1
# No debug info in the image's binary (the repo's release profile keeps some for profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=0
# etcd-client (the fleet, src/fleet/) compiles etcd's protobuf API at build time; the
# training drives the proxy with sysbench and PHP's mysqli, and merges its profile with the
# llvm-profdata of rustc's own LLVM (rustup's llvm-tools).
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
    && if [ "$PGO" = 1 ]; then \
        apt-get install -y --no-install-recommends sysbench php-cli php-mysql \
        && { rustup component add llvm-tools || echo "no llvm-tools: the plain build follows"; }; \
    fi \
    && rm -rf /var/lib/apt/lists/*
# Dependencies first, in a layer of their own, so that editing src/ does not rebuild them
# (the plain build's: the profile-guided one builds everything instrumented, then again).
# Cargo reads every target the manifest declares before building any: benches/ comes too
# (its [[bench]] is never built here). tests/deploy.rs replays this stage's builds.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && if [ "$PGO" != 1 ]; then cargo build --release --locked --bin switchyard; fi \
    && rm -rf src
COPY src ./src
# What the training runs: the synthetic backend, sysbench's tenant and the PHP client.
COPY examples ./examples
COPY scripts/pgo.sh ./scripts/
COPY bench/sbtest.sh bench/connect_per_request.php ./bench/
# COPY keeps the files' old mtimes: touch them so cargo rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs \
    && mkdir -p target/release \
    && if [ "$PGO" = 1 ] && bash scripts/pgo.sh >pgo.out; then \
        cp "$(tail -n 1 pgo.out)" target/release/switchyard; \
    else \
        if [ "$PGO" = 1 ]; then echo "the profile-guided build failed (above): building plain"; fi; \
        cargo build --release --locked --bin switchyard; \
    fi

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# libssl3: caching_sha2_password's RSA (the openssl crate links it); ca-certificates for
# backend_tls CAs that chain to a public root.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 switchyard \
    && useradd --system --uid 10001 --gid switchyard --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin switchyard
COPY --from=build /src/target/release/switchyard /usr/local/bin/switchyard
COPY deploy/switchyard/healthcheck.sh /usr/local/bin/switchyard-healthcheck
# A default config (the compose one: MariaDB services named primary, replica1, replica2).
# Mount your own over it; passwords come from the environment (${VAR} in the file).
COPY config/compose.toml /etc/switchyard/switchyard.toml
# Numeric, so that orchestrators can verify "not root" without reading /etc/passwd.
USER 10001:10001
# app (MySQL protocol), admin (MySQL protocol), HTTP /health and /metrics
EXPOSE 6033 6032 9090
# `switchyard run` drains on SIGTERM (what docker stop sends): transactions may finish.
STOPSIGNAL SIGTERM
# /health is served on [server].http_listen (config/compose.toml: 0.0.0.0:9090); a config
# without it leaves the container "unhealthy" while the proxy works (docs/operations.md).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/switchyard-healthcheck", "http://127.0.0.1:9090/health"]
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["run", "--config", "/etc/switchyard/switchyard.toml"]
