# syntax=docker/dockerfile:1
#
# The engine's container image, for `engine kube` (docs/distributed.md#the-container-image):
#
#   docker build -t registry.example/stampede-engine:0.1 .     # or: podman build -t ... .
#
# Two stages: the engine is built with the same command as a local release build, then copied into a
# slim Debian image with the CA certificates (rustls-native-certs reads the system's roots), `sleep`
# and `tar` (the collector pod uses them), running as an unprivileged user.

ARG RUST_VERSION=1.95
ARG DEBIAN=trixie

FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN} AS build
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds (BuildKit and
# Buildah both honour them); the binary is copied out because the target directory is a cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p engine \
    && install -D -m 0755 target/release/engine /out/engine

FROM docker.io/library/debian:${DEBIAN}-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 stampede \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin stampede
COPY --from=build /out/engine /usr/local/bin/engine
# The same user `engine kube` renders (runAsUser/runAsGroup/fsGroup 65532); io_uring needs no
# privilege, so the engine never runs as root.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/engine"]
CMD ["--help"]
