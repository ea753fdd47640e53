package main

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// target is one site under load: plain HTTP or TLS, one path.
type target struct {
	name string
	addr string      // 127.0.0.1:port
	tls  *tls.Config // nil: plain HTTP
	path string
}

// result is one phase of load on one target.
type result struct {
	ok, failed int
	elapsed    time.Duration
	lat        []time.Duration // sorted
	// status counts non-200 answers by status (0: transport error).
	status map[int]int
}

func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

func (r result) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[int(float64(len(r.lat)-1)*q/100)]
}

// load drives t with conns keep-alive connections, each sending one
// request after the other (a closed loop), until n requests were sent
// (n > 0) or d has passed. body(i) is the i-th request's body. The client
// is deliberately small: one pre-built request head per connection, one
// write per request, so that it takes as little of the machine's CPU as
// possible from the gateway it measures (both targets pay the same).
func load(t target, conns int, d time.Duration, n int64, body func(i int64) []byte) result {
	var next atomic.Int64
	end := time.Now().Add(d)
	type part struct {
		lat    []time.Duration
		failed int
		status map[int]int
	}
	parts := make([]part, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(p *part) {
			defer wg.Done()
			p.status = map[int]int{}
			var conn net.Conn
			var br *bufio.Reader
			var bw *bufio.Writer
			head := "POST " + t.path + " HTTP/1.1\r\nHost: " + t.addr + "\r\nContent-Type: application/json\r\nContent-Length: "
			for {
				i := next.Add(1) - 1
				if (n > 0 && i >= n) || (n <= 0 && time.Now().After(end)) {
					break
				}
				if conn == nil {
					var err error
					if conn, err = dial(t); err != nil {
						p.failed++
						p.status[0]++
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br, bw = bufio.NewReaderSize(conn, 16<<10), bufio.NewWriterSize(conn, 4<<10)
				}
				b := body(i)
				t0 := time.Now()
				_, _ = bw.WriteString(head)
				_, _ = bw.WriteString(strconv.Itoa(len(b)))
				_, _ = bw.WriteString("\r\n\r\n")
				_, _ = bw.Write(b)
				err := bw.Flush()
				var resp *http.Response
				if err == nil {
					resp, err = http.ReadResponse(br, nil)
				}
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					p.failed++
					p.status[0]++
					conn.Close()
					conn = nil
					continue
				}
				if resp.StatusCode != http.StatusOK {
					p.failed++
					p.status[resp.StatusCode]++
				} else {
					p.lat = append(p.lat, time.Since(t0))
				}
				if resp.Close {
					conn.Close()
					conn = nil
				}
			}
			if conn != nil {
				conn.Close()
			}
		}(&parts[c])
	}
	wg.Wait()
	r := result{elapsed: time.Since(start), status: map[int]int{}}
	for _, p := range parts {
		r.lat = append(r.lat, p.lat...)
		r.failed += p.failed
		for s, k := range p.status {
			r.status[s] += k
		}
	}
	r.ok = len(r.lat)
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	return r
}

func dial(t target) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", t.addr, 5*time.Second)
	if err != nil || t.tls == nil {
		return c, err
	}
	tc := tls.Client(c, t.tls)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
