// Package apispec checks real traffic against qrphgate's OpenAPI document
// (proxy/openapi.json) with github.com/getkin/kin-openapi, for the tests
// that keep the document and the code from drifting apart: modulus_api's
// answers (proxy/outbound) and the deliveries modulus_webhook makes
// (proxy/inbound). Only tests import it.
package apispec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/qrphgate/qrphgate/proxy"
)

// DeliveryWebhook is the name of the delivery under the document's webhooks.
const DeliveryWebhook = "paymentEvent"

// Spec is the loaded, validated document and a router over its paths.
type Spec struct {
	Doc *openapi3.T
}

// Load parses proxy.OpenAPI() and checks that it is a valid OpenAPI 3.1
// document.
func Load(t testing.TB) *Spec {
	t.Helper()
	s, err := load(proxy.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func load(b []byte) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("loading proxy/openapi.json: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("proxy/openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableMultiError()); err != nil {
		return nil, fmt.Errorf("proxy/openapi.json is not a valid OpenAPI document: %w", err)
	}
	return &Spec{Doc: doc}, nil
}

// CheckRequest validates a request the app sends (body is its body) against
// the operation the document has for it.
func (s *Spec) CheckRequest(req *http.Request, body []byte) error {
	route, params := s.findRoute(req.Method, req.URL.Path)
	if route == nil {
		return fmt.Errorf("%s %s: the document has no such operation", req.Method, req.URL.Path)
	}
	req = withBody(req, body)
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
	})
}

// CheckResponse validates an answer of modulus_api to req: the status must
// be one the operation documents (a status the document lacks fails), and
// its headers and body must match that response. An answer to a path the
// document lacks must be its NotFound response; to a method a documented
// path does not take, its MethodNotAllowed response, whose Allow may list
// only methods the document has for the path.
func (s *Spec) CheckResponse(req *http.Request, status int, header http.Header, body []byte) error {
	route, params := s.findRoute(req.Method, req.URL.Path)
	if route == nil {
		var err error
		if route, err = s.fallbackRoute(req, status, header); err != nil {
			return err
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s answered %d: %w", req.Method, req.URL.Path, status, err)
	}
	return nil
}

// fallbackRoute is the operation an answer outside the documented
// operations is checked against: a synthetic one whose only response is the
// NotFound or MethodNotAllowed component.
func (s *Spec) fallbackRoute(req *http.Request, status int, header http.Header) (*routers.Route, error) {
	methods := s.methodsOf(req)
	var name string
	switch {
	case status == http.StatusNotFound && len(methods) == 0:
		name = "NotFound"
	case status == http.StatusMethodNotAllowed && len(methods) > 0:
		name = "MethodNotAllowed"
		for _, m := range strings.Split(header.Get("Allow"), ", ") {
			if !slices.Contains(methods, m) {
				return nil, fmt.Errorf("%s %s: Allow %q names %s, which the document does not have for this path (it has %v)",
					req.Method, req.URL.Path, header.Get("Allow"), m, methods)
			}
		}
	case len(methods) == 0:
		return nil, fmt.Errorf("%s %s answered %d: the document has no such path (only 404 not_found may answer it)", req.Method, req.URL.Path, status)
	default:
		return nil, fmt.Errorf("%s %s answered %d: the document has no %s for this path (it has %v; only 405 may answer it)",
			req.Method, req.URL.Path, status, req.Method, methods)
	}
	resp := s.Doc.Components.Responses[name]
	if resp == nil {
		return nil, fmt.Errorf("the document has no components.responses.%s", name)
	}
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(status, resp))
	return &routers.Route{Spec: s.Doc, Path: req.URL.Path, Method: req.Method, Operation: op}, nil
}

// methodsOf lists the methods the document has for req's path.
func (s *Spec) methodsOf(req *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if r, _ := s.findRoute(m, req.URL.Path); r != nil {
			out = append(out, m)
		}
	}
	return out
}

// findRoute is the operation for method on path: the path template whose
// segments match path's, a {name} segment matching any one non-empty
// segment, a literal template winning over a templated one (kin-openapi's
// legacy router also lets {id} match nothing, which would take
// "/v1/webhooks" for "/v1/webhooks/{id}"). The document's server is
// relative ("/": the listener that served it), so the path is all there is
// to match.
func (s *Spec) findRoute(method, path string) (*routers.Route, map[string]string) {
	segs := strings.Split(path, "/")
	var best *routers.Route
	var bestParams map[string]string
	bestVars := -1
	for tmpl, item := range s.Doc.Paths.Map() {
		op := item.GetOperation(method)
		if op == nil {
			continue
		}
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, t := range ts {
			switch {
			case strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}"):
				ok = ok && segs[i] != ""
				params[t[1:len(t)-1]] = segs[i]
			default:
				ok = ok && t == segs[i]
			}
		}
		if ok && (best == nil || len(params) < bestVars) {
			best = &routers.Route{Spec: s.Doc, Path: tmpl, PathItem: item, Method: method, Operation: op}
			bestParams, bestVars = params, len(params)
		}
	}
	return best, bestParams
}

// CheckDelivery validates a delivery modulus_webhook made (req, with body)
// against the document's webhooks.paymentEvent: its headers and body.
func (s *Spec) CheckDelivery(req *http.Request, body []byte) error {
	item := s.Doc.Webhooks[DeliveryWebhook]
	if item == nil || item.Post == nil {
		return fmt.Errorf("the document has no webhooks.%s.post", DeliveryWebhook)
	}
	route := &routers.Route{Spec: s.Doc, Path: DeliveryWebhook, PathItem: item, Method: http.MethodPost, Operation: item.Post}
	err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: withBody(req, body), Route: route, Options: &openapi3filter.Options{MultiError: true},
	})
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	if req.Method != http.MethodPost {
		return fmt.Errorf("delivery with method %s, want POST", req.Method)
	}
	return nil
}

// DeliveryAnswers lists the app answers the delivery documents, as the
// document writes them ("2XX", "410", "default"...).
func (s *Spec) DeliveryAnswers() []string {
	item := s.Doc.Webhooks[DeliveryWebhook]
	if item == nil || item.Post == nil || item.Post.Responses == nil {
		return nil
	}
	var out []string
	for k := range item.Post.Responses.Map() {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

// ErrorCodes collects every error code the document's operations can
// answer, each with the statuses ("400", "4XX"...) that may carry it: the
// enum or const of error.code in each JSON error response.
func (s *Spec) ErrorCodes() map[string][]string {
	out := make(map[string][]string)
	add := func(code, status string) {
		if !slices.Contains(out[code], status) {
			out[code] = append(out[code], status)
			slices.Sort(out[code])
		}
	}
	visit := func(status string, ref *openapi3.ResponseRef) {
		if ref == nil || ref.Value == nil {
			return
		}
		mt := ref.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil {
			return
		}
		for _, c := range codesIn(mt.Schema.Value) {
			add(c, status)
		}
	}
	for _, item := range s.Doc.Paths.Map() {
		for _, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				visit(status, ref)
			}
		}
	}
	for name, status := range map[string]string{"NotFound": "404", "MethodNotAllowed": "405"} {
		visit(status, s.Doc.Components.Responses[name])
	}
	return out
}

// codesIn finds the values error.code may take in an error schema: its
// enum or const, through allOf.
func codesIn(sc *openapi3.Schema) []string {
	if sc == nil {
		return nil
	}
	var out []string
	for _, sub := range sc.AllOf {
		out = append(out, codesIn(sub.Value)...)
	}
	if e := sc.Properties["error"]; e != nil && e.Value != nil {
		if c := e.Value.Properties["code"]; c != nil && c.Value != nil {
			for _, v := range c.Value.Enum {
				if s, ok := v.(string); ok {
					out = append(out, s)
				}
			}
			if s, ok := c.Value.Const.(string); ok {
				out = append(out, s)
			}
		}
		for _, sub := range e.Value.AllOf {
			out = append(out, codesIn(&openapi3.Schema{Properties: openapi3.Schemas{"error": sub}})...)
		}
	}
	return out
}

// StatusMatches reports whether a documented status key ("404", "4XX")
// covers status.
func StatusMatches(key string, status int) bool {
	if n, err := strconv.Atoi(key); err == nil {
		return n == status
	}
	return len(key) == 3 && strings.HasSuffix(key, "XX") && key[0] == strconv.Itoa(status / 100)[0]
}
