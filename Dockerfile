# syntax=docker/dockerfile:1
#
# The supportctl image: a release build on Debian bookworm, run from
# distroless's `cc` image (glibc, libgcc_s and CA certificates, no shell, no
# package manager) as a numeric non-root user. The binary needs nothing
# more: SQLite is compiled in (rusqlite's `bundled`), TLS is rustls, the
# time zone database is compiled in (jiff's `tzdb-bundle-always`), and it
# links only libc, libm and libgcc_s.
#
#   docker build -t supportctl:0.1.0 .
#   docker run --rm supportctl:0.1.0 --version
#
# How to run `watch` from it as a replicated service:
# examples/kubernetes/README.md.

# The toolchain the tree is built and tested with; Cargo.toml's
# rust-version is the oldest that builds it.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src

# The dependencies, in a layer that only a change to Cargo.toml or
# Cargo.lock builds again. The crate's own targets are stand-ins here
# (Cargo.toml names the benchmark's file, so it must exist too); their
# artifacts are removed afterwards, since the real sources copied below may
# be older than them and cargo would then take the stand-ins for current.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/bench.rs \
    && cargo build --release --locked \
    && cargo clean --release -p supportctl \
    && rm -rf src benches

# The crate itself. `supportctl init` compiles in the example tenancy under
# examples/acme-prod. build.rs records the git commit for `--version`; the
# build context holds no .git (see .dockerignore), so the image's
# `--version` says `unknown` for it.
COPY build.rs ./
COPY src ./src
COPY benches ./benches
COPY examples/acme-prod ./examples/acme-prod
RUN cargo build --release --locked --bin supportctl

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="supportctl" \
      org.opencontainers.image.description="Manage who may open Oracle Cloud support requests, as code" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=build /src/target/release/supportctl /usr/local/bin/supportctl
# distroless's `nonroot` user and group, by number, so that Kubernetes'
# `runAsNonRoot` can check it without reading /etc/passwd.
USER 65532:65532
# Its home folder, which it owns: a SQLite state given as a relative path
# and the user's cache folder (`~/.cache/supportctl`) go here. Under a
# read-only root file system, mount a volume and point XDG_CACHE_HOME at it.
WORKDIR /home/nonroot
# The port `watch --listen` serves /metrics, /healthz and /readyz on.
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/supportctl"]
CMD ["--help"]
