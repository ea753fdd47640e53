// Package fakemodulus is an httptest stand-in for the Modulus Labs QR Ph and
// webhook-management APIs, for qrphgate's own tests. It checks HTTP Basic
// auth exactly as documented (secret key as username, empty password),
// decrypts requests and encrypts answers with go-jose directly (not through
// qrphgate's crypto package, so the two check each other), records every
// call, and can be told to misbehave: answer 429 with Retry-After, 5xx,
// 401, hang, answer slowly, reset the connection before or after reading
// the request, send a token nobody can open, or one holding a nonsense answer.
package fakemodulus

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/qrphgate/qrphgate/crypto"
)

// Options configure a Server.
type Options struct {
	// SecretKey is the Basic-auth username the server accepts.
	SecretKey string
	// EncryptionKey is the 32-byte A256KW key for requests and answers.
	EncryptionKey []byte
	// Now stamps recorded calls (a fake clock's Now in tests); nil: time.Now.
	Now func() time.Time
}

// Fault makes the server misbehave for one request. The zero Fault answers
// normally.
type Fault struct {
	// Path limits the fault to requests for this path ("" matches any).
	Path string
	// Status answers this status with Body (a provider error object when
	// empty) and, when set, a Retry-After header.
	Status     int
	Body       string
	RetryAfter string
	// ContentType is Body's Content-Type; application/json when empty.
	ContentType string
	// Hang blocks until the client gives up.
	Hang bool
	// Delay sleeps (real time) before answering normally.
	Delay time.Duration
	// ResetBeforeRead resets the connection before reading the body.
	ResetBeforeRead bool
	// ResetAfterRead reads and records the request (a QR is created), then
	// resets the connection instead of answering.
	ResetAfterRead bool
	// BadToken answers 200 with a token encrypted under another key.
	BadToken bool
	// Answer, when set, is the decrypted create-QR answer to send (sealed
	// under the right key) in place of {"id","qrBody"}: a provider that
	// answers nonsense. The QR counts as created.
	Answer string
}

// Call is one request the server received.
type Call struct {
	Time       time.Time
	Method     string
	Path       string
	Authorized bool
	// Header is the request's headers.
	Header http.Header
	// Plaintext is the decrypted create-QR request, or a webhook call's body.
	Plaintext []byte
	// Created is true when the call created a QR (even if the answer was
	// then lost to a fault).
	Created bool
	// Fault describes the fault applied, "" for none.
	Fault string
}

// Server is the fake provider.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	faults   []Fault
	calls    []Call
	tokens   []string
	seq      int
	webhooks map[string]map[string]string
	png      []byte
	quit     chan struct{}
	quitOnce sync.Once
}

// New starts a Server on 127.0.0.1; it is closed when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	s := NewUnstarted(o)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// NewUnstarted returns a Server whose listener is not started, for callers
// (the load stand-in) that manage it themselves.
func NewUnstarted(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.EncryptionKey) != 32 {
		panic(fmt.Sprintf("fakemodulus: encryption key of %d bytes, want 32", len(o.EncryptionKey)))
	}
	s := &Server{opts: o, webhooks: make(map[string]map[string]string), png: makePNG(), quit: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	return s
}

// Close releases hanging requests and shuts the server down.
func (s *Server) Close() {
	s.quitOnce.Do(func() { close(s.quit) })
	s.Server.Close()
}

// Fail queues faults, applied in order to the next matching requests.
func (s *Server) Fail(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// Calls returns a copy of the calls received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the calls to path.
func (s *Server) CallsTo(path string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// Created counts the QRs the server created.
func (s *Server) Created() int {
	n := 0
	for _, c := range s.Calls() {
		if c.Created {
			n++
		}
	}
	return n
}

// Tokens returns every JWE the server received or sent, for leak checks.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// PNG is the image every created QR carries.
func (s *Server) PNG() []byte { return bytes.Clone(s.png) }

func (s *Server) nextFault(path string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Path == "" || f.Path == path {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return f, true
		}
	}
	return Fault{}, false
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: s.opts.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
	call.Authorized = r.Header.Get("Authorization") == crypto.BasicAuthorization(s.opts.SecretKey)
	f, faulted := s.nextFault(r.URL.Path)
	if faulted {
		call.Fault = describe(f)
		switch {
		case f.ResetBeforeRead:
			s.record(call)
			reset(w)
			return
		case f.Hang:
			s.record(call)
			// Read the body so the server notices the client hanging up.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-s.quit:
			}
			return
		case f.Delay > 0:
			time.Sleep(f.Delay)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.record(call)
		return
	}
	switch {
	case r.URL.Path == "/ping":
		s.record(call)
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if faulted && f.Status != 0 {
			s.answerFault(w, f)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "Pong!")
	case r.URL.Path == "/v1/pay/qr":
		s.createQR(w, r, &call, body, f, faulted)
	case strings.HasPrefix(r.URL.Path, "/v1/webhooks"):
		s.webhookAPI(w, r, &call, body, f, faulted)
	default:
		s.record(call)
		s.errorObject(w, http.StatusNotFound, "404", "not found")
	}
}

func (s *Server) createQR(w http.ResponseWriter, r *http.Request, call *Call, body []byte, f Fault, faulted bool) {
	recorded := false
	defer func() {
		if !recorded {
			s.record(*call)
		}
	}()
	if !call.Authorized {
		s.errorObject(w, http.StatusUnauthorized, "10000013", "Invalid API Key")
		return
	}
	if faulted && f.Status != 0 {
		// Recorded before the answer: the client may stop reading a large
		// one and return before the write ends.
		s.record(*call)
		recorded = true
		s.answerFault(w, f)
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		s.errorObject(w, http.StatusBadRequest, "40000001", "expected POST with application/json")
		return
	}
	var env map[string]json.RawMessage
	var tok string
	if json.Unmarshal(body, &env) != nil || len(env) != 1 || json.Unmarshal(env["Token"], &tok) != nil {
		s.errorObject(w, http.StatusBadRequest, "40000002", "body must be {\"Token\": JWE}")
		return
	}
	s.mu.Lock()
	s.tokens = append(s.tokens, tok)
	s.mu.Unlock()
	pt, err := s.decrypt(tok)
	if err != nil {
		s.errorObject(w, http.StatusBadRequest, "40000003", "JWE token decryption failed")
		return
	}
	call.Plaintext = pt
	var req map[string]any
	if json.Unmarshal(pt, &req) != nil {
		s.errorObject(w, http.StatusBadRequest, "40000004", "payload is not JSON")
		return
	}
	for _, k := range []string{"activationCode", "currency", "amount", "merchantReferenceNumber"} {
		if v, ok := req[k].(string); !ok || v == "" {
			s.errorObject(w, http.StatusBadRequest, "40000005", k+" is required")
			return
		}
	}
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("a78efd32-de3b-4854-b599-%012d", s.seq)
	s.mu.Unlock()
	call.Created = true
	if faulted && f.ResetAfterRead {
		// Record before the reset: the client sees the reset at once and a
		// test may count calls before a deferred record would run.
		s.record(*call)
		recorded = true
		reset(w)
		return
	}
	answer, _ := json.Marshal(map[string]string{"id": id, "qrBody": base64.StdEncoding.EncodeToString(s.png)})
	if faulted && f.Answer != "" {
		answer = []byte(f.Answer)
	}
	key := s.opts.EncryptionKey
	if faulted && f.BadToken {
		key = bytes.Repeat([]byte{7}, 32)
	}
	out, err := encrypt(key, answer)
	if err != nil {
		s.errorObject(w, http.StatusInternalServerError, "50000001", err.Error())
		return
	}
	s.mu.Lock()
	s.tokens = append(s.tokens, out)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"Token":"`+out+`"}`)
}

func (s *Server) webhookAPI(w http.ResponseWriter, r *http.Request, call *Call, body []byte, f Fault, faulted bool) {
	defer func() { s.record(*call) }()
	if !call.Authorized {
		s.errorObject(w, http.StatusUnauthorized, "20000001", "Invalid or missing secret key")
		return
	}
	if faulted && f.Status != 0 {
		s.answerFault(w, f)
		return
	}
	// Bodies may be plain JSON or {"Token": JWE}; record the plaintext.
	pt := body
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) == nil && len(env) == 1 && env["Token"] != nil {
		var tok string
		_ = json.Unmarshal(env["Token"], &tok)
		s.mu.Lock()
		s.tokens = append(s.tokens, tok)
		s.mu.Unlock()
		var err error
		if pt, err = s.decrypt(tok); err != nil {
			s.errorObject(w, http.StatusBadRequest, "20000002", "JWE token decryption failed")
			return
		}
	}
	call.Plaintext = pt
	var fields map[string]string
	if len(pt) > 0 && json.Unmarshal(pt, &fields) != nil {
		s.errorObject(w, http.StatusBadRequest, "20000003", "invalid body")
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/v1/webhooks/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.URL.Path == "/v1/webhooks" && r.Method == http.MethodGet:
		list := []map[string]any{}
		for id, wh := range s.webhooks {
			list = append(list, map[string]any{"id": id, "webhookUrl": wh["callbackUrl"], "actions": []string{wh["webhookAction"]}, "status": wh["webhookStatus"]})
		}
		writeJSON(w, http.StatusOK, map[string]any{"webhooks": list})
	case r.URL.Path == "/v1/webhooks" && r.Method == http.MethodPost:
		s.seq++
		id := fmt.Sprintf("b78efd32-de3b-4854-b599-%012d", s.seq)
		wh := map[string]string{"callbackUrl": fields["callbackUrl"], "webhookAction": fields["webhookAction"], "webhookStatus": "ENABLED"}
		s.webhooks[id] = wh
		writeJSON(w, http.StatusCreated, map[string]string{"id": id, "callbackUrl": wh["callbackUrl"], "webhookAction": wh["webhookAction"], "webhookStatus": wh["webhookStatus"]})
	case r.URL.Path == "/v1/webhooks/qrph/simulate" && r.Method == http.MethodPost:
		s.seq++
		writeJSON(w, http.StatusOK, map[string]string{"id": fmt.Sprintf("a78efd32-de3b-4854-b599-%012d", s.seq)})
	case r.Method == http.MethodPut:
		wh, ok := s.webhooks[id]
		if !ok {
			s.errorObjectLocked(w, http.StatusNotFound, "20000004", "Webhook not found")
			return
		}
		for k, v := range fields {
			wh[k] = v
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "callbackUrl": wh["callbackUrl"], "webhookAction": wh["webhookAction"], "webhookStatus": wh["webhookStatus"]})
	case r.Method == http.MethodDelete:
		if _, ok := s.webhooks[id]; !ok {
			s.errorObjectLocked(w, http.StatusNotFound, "20000004", "Webhook not found")
			return
		}
		delete(s.webhooks, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		s.errorObjectLocked(w, http.StatusMethodNotAllowed, "20000005", "method not allowed")
	}
}

func (s *Server) answerFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", cmp.Or(f.ContentType, "application/json"))
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return
	}
	s.errorObject(w, f.Status, fmt.Sprintf("9%07d", f.Status), http.StatusText(f.Status))
}

func (s *Server) errorObject(w http.ResponseWriter, status int, code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorObjectLocked(w, status, code, msg)
}

func (s *Server) errorObjectLocked(w http.ResponseWriter, status int, code, msg string) {
	s.seq++
	writeJSON(w, status, map[string]string{"code": code, "error": msg, "referenceNumber": fmt.Sprintf("338e2710-8268-4afe-8ef9-%012d", s.seq)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) decrypt(tok string) ([]byte, error) {
	obj, err := jose.ParseEncryptedCompact(tok, []jose.KeyAlgorithm{jose.A256KW}, []jose.ContentEncryption{jose.A256CBC_HS512})
	if err != nil {
		return nil, err
	}
	if obj.Header.Algorithm != string(jose.A256KW) {
		return nil, fmt.Errorf("alg %q", obj.Header.Algorithm)
	}
	return obj.Decrypt(s.opts.EncryptionKey)
}

// Encrypt seals plaintext as the provider does (for tests that craft
// answers).
func (s *Server) Encrypt(plaintext []byte) (string, error) {
	return encrypt(s.opts.EncryptionKey, plaintext)
}

func encrypt(key, plaintext []byte) (string, error) {
	enc, err := jose.NewEncrypter(jose.A256CBC_HS512, jose.Recipient{Algorithm: jose.A256KW, Key: key}, nil)
	if err != nil {
		return "", err
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// reset aborts the connection with a TCP RST.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func describe(f Fault) string {
	switch {
	case f.ResetBeforeRead:
		return "reset_before_read"
	case f.ResetAfterRead:
		return "reset_after_read"
	case f.Hang:
		return "hang"
	case f.BadToken:
		return "bad_token"
	case f.Answer != "":
		return "answer"
	case f.Status != 0:
		return fmt.Sprintf("status_%d", f.Status)
	case f.Delay > 0:
		return "delay"
	}
	return "none"
}

// makePNG draws a small, valid PNG (a checkerboard standing in for a QR).
func makePNG() []byte {
	img := image.NewGray(image.Rect(0, 0, 21, 21))
	for y := 0; y < 21; y++ {
		for x := 0; x < 21; x++ {
			if (x+y)%2 == 0 {
				img.SetGray(x, y, color.Gray{Y: 0})
			} else {
				img.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}
