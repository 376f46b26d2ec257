# One image per service, one for the gateway and one for the storefront, from one build of the
# workspace.
#
#   docker build --force-rm --target order-service -t platform/order-service:0.1.0 .
#
# Targets: user-service, order-service, payment-service, inventory-service,
# notification-service, gateway, storefront. They share every stage up to `build`, so once one
# is built the others take seconds. Build arguments: VERSION, REVISION (e.g.
# `git rev-parse HEAD`) and SOURCE (the repository's URL) become OCI labels.
#
# Written for the classic builder as much as for BuildKit: no `RUN --mount`, no heredocs, no
# `COPY --chmod/--link`. Without cache mounts, the dependencies are compiled in a layer of
# their own from a skeleton of the workspace (docker/skeleton.sh) that changes only when a
# manifest, Cargo.lock or proto/ does; editing the code reruns the `build` stage alone (it
# recompiles every crate of the workspace and links each binary with fat LTO, one to three
# minutes a binary; both stages from cold took ~10.5 min on 2 cores).

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS toolchain
# Extra CA certificates for networks that inspect TLS (see docker/extra-ca/README.md); the
# folder holds only its README elsewhere. They stay in the build stages: no runtime image
# copies anything but a binary from here.
COPY docker/extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
# The `dist` profile of Cargo.toml (the whole program optimised at once, for size), but
# stripped: the line tables it asks for would be stripped anyway, so they are not generated.
ENV CARGO_PROFILE_DIST_STRIP=symbols \
    CARGO_PROFILE_DIST_DEBUG=false \
    CARGO_TERM_COLOR=never \
    CARGO_NET_RETRY=5
WORKDIR /platform

# ---------------------------------------------------------------------------------------------
# /skeleton: manifests, Cargo.lock, build scripts and stub targets. /sources: the code without
# tests. This stage reruns on any change; what the next ones copy from it changes far less.
FROM toolchain AS skeleton
COPY . /src
RUN sh /src/docker/skeleton.sh make /src /skeleton /sources

# ---------------------------------------------------------------------------------------------
# Every third-party dependency (and proto/'s generated code), compiled once per Cargo.lock.
FROM toolchain AS dependencies
COPY --from=skeleton /skeleton/ ./
RUN cargo build --profile dist --locked \
        -p user-service -p order-service -p payment-service \
        -p inventory-service -p notification-service -p gateway -p storefront

# ---------------------------------------------------------------------------------------------
# The services, the gateway and the storefront, built once. Offline: every crate was fetched
# above. The storefront's templates/ and static/ are compiled into its binary (include_str!):
# they come with its sources.
FROM dependencies AS build
COPY --from=skeleton /sources/ ./
RUN sh docker/skeleton.sh touch . \
    && cargo build --profile dist --locked --offline \
        -p user-service -p order-service -p payment-service \
        -p inventory-service -p notification-service -p gateway -p storefront \
    && mkdir /out \
    && cp target/dist/user-service target/dist/order-service \
        target/dist/payment-service target/dist/inventory-service \
        target/dist/notification-service target/dist/storefront target/dist/gateway /out/

# ---------------------------------------------------------------------------------------------
# What every image shares: glibc, CA certificates, a non-root user; no shell, no compiler.
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
# Logs are JSON when stdout is not a terminal anyway; this keeps them JSON under `docker run -t`.
ENV LOG_FORMAT=json
# The allocator settings every process runs with (libs/http/src/memory.rs: large blocks, such
# as a password hash's 12 MiB, are given back when freed; the gateway's mimalloc takes no huge
# pages). A binary started without them runs itself again with them; set here, it need not.
ENV MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2 MIMALLOC_ALLOW_THP=0
USER 65532:65532

# ---------------------------------------------------------------------------------------------
# One image per binary. Ports are services.toml's defaults ({PREFIX}__HTTP__PORT, ...); the
# health check asks the binary itself (`<binary> healthcheck` GETs its own /health/ready).

FROM runtime AS user-service
LABEL org.opencontainers.image.title="user-service" \
      org.opencontainers.image.description="The user service: accounts, credentials, access and refresh tokens, roles."
COPY --from=build /out/user-service /usr/local/bin/user-service
EXPOSE 8081 9081
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/user-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/user-service"]

FROM runtime AS order-service
LABEL org.opencontainers.image.title="order-service" \
      org.opencontainers.image.description="The order service: orders, their items and status history, and the checkout saga."
COPY --from=build /out/order-service /usr/local/bin/order-service
EXPOSE 8082
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/order-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/order-service"]

FROM runtime AS payment-service
LABEL org.opencontainers.image.title="payment-service" \
      org.opencontainers.image.description="The payment service: payment methods (provider tokens only), charges and refunds, with a test-mode provider."
COPY --from=build /out/payment-service /usr/local/bin/payment-service
EXPOSE 8083 9083
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/payment-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/payment-service"]

FROM runtime AS inventory-service
LABEL org.opencontainers.image.title="inventory-service" \
      org.opencontainers.image.description="The inventory service: the product catalogue (cached in Redis, served with ETags), stock, and reservations for the checkout saga, in MongoDB."
COPY --from=build /out/inventory-service /usr/local/bin/inventory-service
EXPOSE 8084 9084
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/inventory-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/inventory-service"]

FROM runtime AS notification-service
LABEL org.opencontainers.image.title="notification-service" \
      org.opencontainers.image.description="The notification service: turns events into emails, once per event, and records every delivery attempt."
COPY --from=build /out/notification-service /usr/local/bin/notification-service
EXPOSE 8085
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/notification-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/notification-service"]

FROM runtime AS gateway
LABEL org.opencontainers.image.title="gateway" \
      org.opencontainers.image.description="The edge: the only thing clients talk to."
COPY --from=build /out/gateway /usr/local/bin/gateway
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway"]

FROM runtime AS storefront
LABEL org.opencontainers.image.title="storefront" \
      org.opencontainers.image.description="The web shop: server-rendered pages over the gateway's public API, sessions in Redis."
COPY --from=build /out/storefront /usr/local/bin/storefront
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/storefront", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/storefront"]
