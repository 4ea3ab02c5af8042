# syntax=docker/dockerfile:1
#
# The ezenroll server as a container image. Built in the official Rust image on Debian 12
# (bookworm); run on distroless cc-debian12: the same Debian's glibc and libgcc, and no
# shell or package manager.
#
#   docker build -t ezenroll .
#   docker run --rm -p 8080:8080 -e EZENROLL_JWT_SECRET="$(openssl rand -hex 24)" ezenroll
#
# Without REDIS_URL the server keeps its state in memory, where nothing survives the
# container; deploy/k8s/README.md runs it on Kubernetes with Redis. Every setting is an
# environment variable or a flag: `docker run --rm ezenroll serve --help` lists them.

# Keep in step with the toolchain the project is tested with (at least Cargo.toml's
# rust-version).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The crate registry and target/ are BuildKit cache mounts, so a rebuild after a source
# change compiles ezenroll alone, not its dependencies, with no stub sources to keep in step
# with Cargo.toml. A cache mount is gone after its step, hence the copy to /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin ezenroll \
    && install -D -m 0755 target/release/ezenroll /out/ezenroll

FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/ezenroll /usr/local/bin/ezenroll
# A numeric user, so Kubernetes' runAsNonRoot can verify it without a passwd entry.
USER 10001:10001
# In a container the server listens on every interface; the port is the one EXPOSEd.
ENV EZENROLL_LISTEN=0.0.0.0:8080
ENV EZENROLL_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["ezenroll"]
CMD ["serve"]
