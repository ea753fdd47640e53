package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// measure is one target's figures in one round.
type measure struct {
	res            result
	cpu            time.Duration // the gateway's CPU time during the phase
	roundTrips     float64       // Redis round trips per call (modulus_api redis)
	commands       float64       // Redis commands per call (server side)
	writesPerFsync float64       // the spool's (modulus_webhook)
	drain          time.Duration // after a webhook phase, until the app had every event
	hwm            int64         // outbound: the gateway's peak RSS (KB) after its round
}

func (m measure) cpuPerReq() time.Duration {
	if m.res.ok == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.res.ok)
}

type report struct {
	out      map[string][]measure
	outNames []string
	in       map[int][][2]measure // senders -> rounds of {reverse_proxy TLS, modulus_webhook}

	acked, delivered, repeated int
	trafficHWM                 map[string]int64 // gateway -> peak RSS (KB)
	profile                    string

	idle                   [2]int64         // KB: production-like, plain
	ready                  [2]time.Duration // production-like, plain
	queued                 int
	queueRSS, queueIdleRSS int64
}

func (r *report) print(o options, took time.Duration) {
	if r.out == nil {
		r.out = map[string][]measure{}
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("\n## qrphgate performance comparison\n\n")
	p("%s; %d rounds; run took %v\n", machine(), o.rounds, took.Round(time.Second))
	if len(r.outNames) > 0 {
		p("\n(a)(b) outbound POST /v1/pay/qr, %d connections, %v per round (each in a gateway started and warmed up for it), fresh references\n\n", o.conns, o.duration)
		p("| round | target | req/s | p50 | p99 | gateway CPU/req | peak RSS | Redis round trips/call | Redis commands/call |\n|---|---|---|---|---|---|---|---|---|\n")
		for i := 0; i < o.rounds; i++ {
			for _, n := range r.outNames {
				m := r.out[n][i]
				rt, cmd := "", ""
				if m.roundTrips > 0 || m.commands > 0 {
					rt, cmd = fmt.Sprintf("%.2f", m.roundTrips), fmt.Sprintf("%.2f", m.commands)
				}
				p("| %d | %s | %.0f | %v | %v | %v | %.0f MB | %s | %s |\n", i+1, n, m.res.rps(), ms(m.res.p(50)), ms(m.res.p(99)), us(m.cpuPerReq()), mb(m.hwm), rt, cmd)
			}
		}
		p("\n")
		ratio := func(label, a, bn string, target string) {
			ma, mb := r.out[a], r.out[bn]
			if len(ma) == 0 || len(mb) == 0 {
				return
			}
			var rr, pr []string
			for i := range ma {
				rr = append(rr, fmt.Sprintf("%.2f (%.0f / %.0f)", ma[i].res.rps()/mb[i].res.rps(), ma[i].res.rps(), mb[i].res.rps()))
				pr = append(pr, fmt.Sprintf("%.2f (%v / %v)", float64(ma[i].res.p(99))/float64(mb[i].res.p(99)), ms(ma[i].res.p(99)), ms(mb[i].res.p(99))))
			}
			p("%s req/s ratio per round: %s; target %s\n", label, strings.Join(rr, ", "), target)
			p("%s p99 ratio per round:   %s\n", label, strings.Join(pr, ", "))
		}
		ratio("(a) modulus_api memory / reverse_proxy:", "modulus_api memory", "reverse_proxy", ">= 1.0 (p99 <= 1.1)")
		ratio("(b) modulus_api redis / memory:", "modulus_api redis", "modulus_api memory", ">= 0.8")
	}
	if len(r.in) > 0 {
		p("\n(c) inbound over TLS, %d distinct webhooks per target per round, every 200 after its fsync\n\n", o.webhooks)
		p("| senders | round | reverse_proxy req/s | p99 | modulus_webhook req/s | p99 | ratio | writes/fsync | gateway CPU/req (proxy / webhook) |\n|---|---|---|---|---|---|---|---|---|\n")
		var ss []int
		for s := range r.in {
			ss = append(ss, s)
		}
		sort.Ints(ss)
		for _, s := range ss {
			for i, m := range r.in[s] {
				px, wh := m[0], m[1]
				p("| %d | %d | %.0f | %v | %.0f | %v | **%.2f** | %.1f | %v / %v |\n", s, i+1, px.res.rps(), ms(px.res.p(99)), wh.res.rps(), ms(wh.res.p(99)),
					wh.res.rps()/px.res.rps(), wh.writesPerFsync, us(px.cpuPerReq()), us(wh.cpuPerReq()))
			}
		}
		p("\nwebhooks acknowledged %d, delivered %d distinct, %d more than once; target ratio >= 0.75\n", r.acked, r.delivered, r.repeated)
	}
	for _, n := range []string{"outbound", "inbound", "mixed"} {
		if kb := r.trafficHWM[n]; kb > 0 {
			p("peak RSS of the %s gateway over its run (VmHWM): %.1f MB\n", n, mb(kb))
		}
	}
	if r.idle[1] > 0 {
		p("\n(d) footprint (medians of three starts each)\n\n")
		p("idle RSS: production-like %.1f MB / plain Caddy %.1f MB = **%.2f** (target <= 1.15)\n", mb(r.idle[0]), mb(r.idle[1]), float64(r.idle[0])/float64(r.idle[1]))
		p("start-up to ready: production-like %v (/readyz 200), plain Caddy %v (first proxied 200); target < 1s\n", ms(r.ready[0]), ms(r.ready[1]))
		if r.queueRSS > 0 {
			p("RSS with %d calls queued for rate slots: %.1f MB (%.1f MB before; %.1f KB per queued call)\n", r.queued, mb(r.queueRSS), mb(r.queueIdleRSS),
				float64(r.queueRSS-r.queueIdleRSS)/float64(max(r.queued, 1)))
		}
	}
	if r.profile != "" {
		p("\nCPU profile of the mixed load: %s\n", r.profile)
	}
	fmt.Print(b.String())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }
func mb(kb int64) float64       { return float64(kb) / 1024 }
