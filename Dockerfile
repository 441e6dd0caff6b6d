# syntax=docker/dockerfile:1
# sluice as a container image: a static Go binary (CGO_ENABLED=0) on
# distroless/static, which holds CA certificates, time zone data and a
# non-root user, and no shell (health checks use `sluice probe`).
#
#   docker build -t sluice:dev --build-arg VERSION=v0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run --rm sluice:dev --version
#
# docs/deploy.md describes the image, deploy/compose.yaml and deploy/k8s/.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The source is copied without .git, so Go records no VCS revision: the
# version and revision `sluice --version` prints come from these.
ARG VERSION=dev
ARG REVISION=
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.releaseVersion=${VERSION} -X main.releaseRevision=${REVISION}" \
      -o /out/sluice ./cmd/sluice \
 && mkdir -p /out/var/lib/sluice

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Stream processor: micro-batches, checkpoints, Kafka, backpressure" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/sluice /usr/local/bin/sluice
# Checkpoints and local output go under /var/lib/sluice (a volume), owned
# by the image's non-root user (distroless "nonroot", uid 65532).
COPY --from=build --chown=65532:65532 /out/var/lib/sluice /var/lib/sluice
USER 65532:65532
WORKDIR /var/lib/sluice
VOLUME /var/lib/sluice
# The live UI, HTTP API, /metrics, /healthz and /readyz: `sluice run
# --ui-addr 0.0.0.0:4040` (the default, 127.0.0.1:4040, is unreachable
# from outside the container).
EXPOSE 4040
ENTRYPOINT ["sluice"]
CMD ["--help"]
