# syntax=docker/dockerfile:1
# Multi-stage build of the single fctf executable; the runtime image is Debian slim (the local
# runtime needs /bin/sh), runs as an unprivileged user and keeps state under /data.

FROM rust:1-bookworm AS build
WORKDIR /src
# Build the dependency graph first so source edits do not rebuild every crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src tests/it && echo 'fn main() {}' > src/main.rs && touch src/lib.rs tests/it/main.rs \
    && cargo build --release --locked --bin fctf || true
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin fctf \
    && strip target/release/fctf

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fctf \
    && useradd --system --uid 10001 --gid fctf --home-dir /data --shell /usr/sbin/nologin fctf \
    && mkdir -p /data && chown fctf:fctf /data
COPY --from=build /src/target/release/fctf /usr/local/bin/fctf
USER 10001:10001
ENV FCTF_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000 8001 8080 1337 9000
HEALTHCHECK --interval=10s --timeout=3s CMD ["fctf", "healthcheck", "http://127.0.0.1:9000/healthz"]
ENTRYPOINT ["/usr/bin/tini", "--", "fctf"]
CMD ["run", "--role", "all"]
