# syntax=docker/dockerfile:1

# Build stage. --platform=$BUILDPLATFORM runs the Go toolchain natively and
# cross-compiles for the target, so `docker buildx build --platform
# linux/amd64,linux/arm64 .` needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26.10 AS build
WORKDIR /src

# Modules first: this layer is rebuilt only when go.mod or go.sum change,
# not on every source edit. (A plain layer, not a cache mount, so the
# modules survive in exported layer caches such as CI's --cache-from.)
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

# Static binary (CGO_ENABLED=0) for the libc-less distroless image;
# -trimpath drops local paths, -s -w drops symbol and debug tables.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/keygate ./cmd/keygate

# Runtime stage: no shell or package manager, CA certificates and tzdata
# included, runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keygate /keygate
USER nonroot:nonroot
# gRPC ext_authz (envoy.service.auth.v3.Authorization) for Envoy.
EXPOSE 9191
ENTRYPOINT ["/keygate"]
# keygate listens on loopback by default; in a container it must listen on all interfaces.
# --plaintext: a container's address is not loopback, so keygate wants TLS
# (--tls-cert/--tls-key, --tls-client-ca) or this explicit choice; keep the
# port behind a NetworkPolicy when serving plain text.
CMD ["serve", "--grpc-addr=0.0.0.0:9191", "--plaintext"]
