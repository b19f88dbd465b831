# The tern binary: `tern serve` (standalone), `tern connect`, `tern logic`.
# Built in a Rust image, run from a slim Debian one. No system protoc is
# needed (protox compiles the .proto files).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tern

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/tern --create-home tern
COPY --from=build /src/target/release/tern /usr/local/bin/tern
USER tern
WORKDIR /var/lib/tern
ENV TERN_DATA_DIR=/var/lib/tern/data
EXPOSE 7400 7480
ENTRYPOINT ["tern"]
CMD ["serve", "--listen", "0.0.0.0:7400"]
