package caddymodule

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
)

// defenceCaddyfile is a webhook site with tight limits: 1s to send a body,
// 5 webhooks an hour per address. The server keeps Caddy's default
// timeouts, whose idle timeout restarts on every byte received.
func defenceCaddyfile(p gatewayPorts) string {
	return fmt.Sprintf(`{
	admin %s
	http_port %d
	https_port %d
	skip_install_trust
	auto_https disable_redirects
}

https://127.0.0.1:%d {
	tls internal
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key    {env.QRPHGATE_E2E_KEY_1}
			allow_ips         127.0.0.1/32 127.0.0.2/32
			forward_to        http://127.0.0.1:%d/payments
			sign_secret       {env.QRPHGATE_E2E_SIGN}
			spool             spool/webhooks.spool
			read_timeout      1s
			rate_limit_per_ip 5/1h
			rate_limit        100/1h
		}
	}
}

http://127.0.0.1:%d {
	modulus_metrics
}
`, p.adminAddr(), p.http, p.https, p.https, p.app, p.metrics)
}

// A body trickled one byte a second from an allowed address is cut off at
// read_timeout with 408 and a closed connection, through the real binary
// (Caddy's own timeouts would let it trickle for minutes). A flood from one
// address gets 429 rate_limited with Retry-After while another address
// still gets through, and the refusals are counted.
func TestWebhookEndpointDefenceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := newGatewayPorts(t)
	serveApp(t, p.app, newRecordingApp(t))
	g := e2e.Start(t, e2e.Options{Caddyfile: defenceCaddyfile(p), AdminAddr: p.adminAddr(), Env: gatewayEnv()})
	c1 := tlsClient(t, g.Dir(), "127.0.0.1")
	url := p.url("/webhooks/modulus")
	// The first request also waits for the certificate.
	if a := postWebhook(t, c1, url, sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"DEF-0"}`), nil); a.status != 200 {
		t.Fatalf("first webhook: %d %s", a.status, a.body)
	}

	t.Run("trickled body", func(t *testing.T) {
		tr := c1.Transport.(*http.Transport)
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}},
			"tcp", fmt.Sprintf("127.0.0.1:%d", p.https), &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /webhooks/modulus HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
		stop := make(chan struct{})
		defer close(stop)
		go func() { // one byte a second: 100 s for the whole body
			for i := 0; i < 100; i++ {
				if _, err := conn.Write([]byte("{")); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
			}
		}()
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(15 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer %v after the trickle began: %v", time.Since(start), err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "request_timeout") || !resp.Close {
			t.Fatalf("answer %d %s (connection close %v)", resp.StatusCode, body, resp.Close)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Fatalf("cut off after %v; read_timeout is 1s", d)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the connection stayed open after the 408")
		}
	})

	t.Run("flood", func(t *testing.T) {
		// DEF-0 and the trickle used two of 127.0.0.1's five.
		got := map[int]int{}
		var retryAfter string
		for i := 1; i <= 10; i++ {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(sealWebhook(t, fmt.Sprintf(`{"action":"QRPH_SUCCESS","referenceNumber":"DEF-%d"}`, i))))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c1.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests {
				retryAfter = resp.Header.Get("Retry-After")
			}
		}
		if got[200] != 3 || got[http.StatusTooManyRequests] != 7 || retryAfter == "" {
			t.Fatalf("answers by status %v, Retry-After %q; want 3 accepted, then 429", got, retryAfter)
		}
		c2 := tlsClient(t, g.Dir(), "127.0.0.2")
		if a := postWebhook(t, c2, url, sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"DEF-OTHER"}`), nil); a.status != 200 {
			t.Fatalf("another address during the flood: %d %s", a.status, a.body)
		}
		metrics := getBody(t, fmt.Sprintf("http://127.0.0.1:%d/", p.metrics))
		if !strings.Contains(metrics, `qrphgate_webhooks_received_total{result="rate_limited"} 7`) ||
			!strings.Contains(metrics, `qrphgate_webhooks_received_total{result="request_timeout"} 1`) {
			t.Fatalf("metrics lack the refusals:\n%s", grepLines(metrics, "qrphgate_webhooks_received_total"))
		}
	})
}
