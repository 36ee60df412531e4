# pairingd container image: a static binary on distroless, no shell.
#
#   docker build -t pairingd --build-arg VERSION=v0.1.0 \
#     --build-arg COMMIT=$(git rev-parse HEAD) --build-arg DATE=$(git log -1 --format=%cI) .
#   docker run --rm -p 127.0.0.1:8080:8080 -v pairingd-data:/var/lib/pairingd pairingd
#
# CGO_ENABLED=0 builds with the pure-Go SQLite (modernc.org/sqlite): the
# binary needs no libc, so it runs on distroless/static, and the same build
# cross-compiles for every release target. It is slower than the C SQLite
# through cgo (see docs/performance.md); for more throughput, run on
# PostgreSQL (compose.yaml).

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG DATE=
RUN CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
        -o /out/pairingd ./cmd/pairingd \
    && mkdir -p /out/data

# distroless/static: CA certificates (Telegram and Graph API calls), tzdata,
# /etc/passwd with the "nonroot" user (65532), and no shell or package
# manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pairingd /usr/local/bin/pairingd
COPY --from=build --chown=65532:65532 /out/data /var/lib/pairingd
ENV PAIRINGD_SERVER_LISTEN=0.0.0.0:8080 \
    PAIRINGD_DATABASE_DSN=/var/lib/pairingd/pairingd.db
WORKDIR /var/lib/pairingd
VOLUME ["/var/lib/pairingd"]
USER 65532:65532
EXPOSE 8080
# No HEALTHCHECK: the image has no shell or curl to run one, and pairingd
# has no probe command. Orchestrators probe over HTTP instead: GET /healthz
# (the process answers) for liveness, GET /readyz (the database takes
# writes) for readiness; see docs/operations.md, "Probes".
ENTRYPOINT ["/usr/local/bin/pairingd"]
CMD ["serve"]
