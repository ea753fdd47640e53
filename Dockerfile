# qrphgate: Caddy with the qrphgate modules, as a small non-root image.
#
#   docker build -t qrphgate .
#   docker run --rm -v qrphgate-data:/data --env-file .env -p 443:8443 -p 80:8080 qrphgate
#
# The default config is Caddyfile.example: .env must set the variables listed
# at its top (it refuses to adapt without QRPHGATE_WEBHOOK_IPS). Mount your
# own config at /etc/qrphgate/Caddyfile to replace it. The outbound gateway
# (2090) listens on 127.0.0.1 only, so it cannot be published: the app
# reaches it by sharing the container's network namespace (a pod, or
# Compose's network_mode: service:...).
#
# /data holds Caddy's certificates and the webhook spool (decrypted payloads
# waiting for the app): mount a volume there.
#
# The go-live checklist (docs/to-production.md, "Preflight"), as a CI or
# init step with the same environment and volume; exit status 1 when a
# check fails, --json for the pipeline, --live once the credentials and the
# public webhook site are in place:
#
#   docker run --rm -v qrphgate-data:/data --env-file .env qrphgate \
#     modulus preflight --config /etc/qrphgate/Caddyfile --adapter caddyfile --json

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
# 8443 webhooks over TLS (map 443 to it), 8080 ACME HTTP challenge and the
# HTTPS redirect (map 80 to it), 9180 metrics and health. Not 2090: the
# outbound gateway is on loopback, for the app in the same network namespace.
EXPOSE 8443 8080 9180
ENTRYPOINT ["/usr/bin/qrphgate"]
CMD ["run", "--config", "/etc/qrphgate/Caddyfile", "--adapter", "caddyfile"]
