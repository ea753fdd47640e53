# qrphgate: Caddy with the qrphgate modules, as a small non-root image.
#
#   docker build -t qrphgate .
#   docker run --rm -p 2090:2090 -v qrphgate-data:/data \
#     -v "$PWD/Caddyfile.example:/etc/qrphgate/Caddyfile:ro" qrphgate
#
# /data holds Caddy's certificates and the webhook spool (decrypted payloads
# waiting for the app): mount a volume there.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not re-download modules.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/qrphgate ./cmd/qrphgate
# distroless has no shell to mkdir with: prepare the data and config
# directories here, owned by the nonroot user (65532).
RUN mkdir -p /out/data /out/config

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/qrphgate /usr/bin/qrphgate
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/config /config
COPY Caddyfile.example /etc/qrphgate/Caddyfile
# Caddy keeps certificates (and qrphgate its default spool) under
# $XDG_DATA_HOME/caddy, autosaved config under $XDG_CONFIG_HOME.
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config
VOLUME /data
USER nonroot:nonroot
# 2090 outbound (loopback in a pod), 8443 webhooks over TLS (map 443 to it),
# 9180 metrics and health.
EXPOSE 2090 8443 9180
ENTRYPOINT ["/usr/bin/qrphgate"]
CMD ["run", "--config", "/etc/qrphgate/Caddyfile", "--adapter", "caddyfile"]
