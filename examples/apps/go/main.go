// Command checkout is qrphgate's example app in Go (net/http): a checkout
// page that creates an order's QR Ph through the qrphgate sidecar and shows
// it, and a webhook route that verifies the sidecar's Webhook-Signature with
// the official Standard Webhooks library and marks the order paid or
// declined. Orders live in memory.
package main

import (
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// The defaults match qrphgate's quickstart (examples/quickstart/Caddyfile).
const (
	defaultSidecar = "http://127.0.0.1:2090"
	defaultPort    = "3000"
	// The quickstart's obviously fake signing secret
	// (examples/quickstart/fake-secrets/sign_secret). Never a real one.
	defaultSecret = "TEST-ONLY-fake-signing-secret-do-not-use"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	sidecar := strings.TrimRight(env("QRPHGATE_URL", defaultSidecar), "/")
	port := env("PORT", defaultPort)
	verifier, err := newVerifier(env("QRPHGATE_SIGNING_SECRET", defaultSecret))
	if err != nil {
		log.Fatalf("QRPHGATE_SIGNING_SECRET: %v", err)
	}
	app := &app{
		orders:  newOrders(),
		sidecar: &sidecarClient{base: sidecar, http: &http.Client{Timeout: 30 * time.Second}},
		verify:  verifier,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", app.index)
	mux.HandleFunc("POST /orders", app.createOrder)
	mux.HandleFunc("GET /orders/{ref}", app.showOrder)
	mux.HandleFunc("POST /payments/modulus", app.webhook)

	addr := net.JoinHostPort("127.0.0.1", port)
	log.Printf("checkout on http://%s/ (sidecar %s, webhooks on /payments/modulus)", addr, sidecar)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// app holds what the handlers share.
type app struct {
	orders  *orders
	sidecar *sidecarClient
	verify  func(body []byte, h http.Header) error
}
