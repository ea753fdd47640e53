package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/certmagic"
)

// The handler modules preflight checks itself. Caddy provisions the rest of
// the config as it would at start-up, with a stand-in in their place (see
// preflight_standin.go): their own Provision would open the spool, the
// store and the delivery worker, which a running gateway may hold.
const (
	handlerAPI     = "modulus_api"
	handlerWebhook = "modulus_webhook"
	handlerSandbox = "modulus_sandbox"
)

// pfConfig is a configuration as preflight reads it: the adapted JSON,
// the modulus handlers in it with their sites, and what provisioning the
// rest of it said.
type pfConfig struct {
	// adapter is the adapter used ("json" for none).
	adapter string
	// warnings are the adapter's warnings.
	warnings []string
	root     map[string]any
	handlers []*pfHandler
	// handlerNames holds every handler module named anywhere.
	handlerNames map[string]bool
	adminListen  string
	adminOff     bool
	// certFiles are the certificate files the tls app loads.
	certFiles []string
	// httpPort and httpsPort are the http app's http_port and https_port
	// when the config sets them.
	httpPort, httpsPort string
	// ledger is the modulus app's ledger option as configured. Caddy
	// provisions the app with a memory ledger instead: the file or Redis
	// ledger is the running gateway's (a file one is locked), and
	// preflight checks it itself.
	ledger string
	// provisionErr is Caddy's verdict on the config with stand-ins.
	provisionErr error
	// storage is the config's certificate storage (nil until provisioned).
	storage certmagic.Storage
}

// pfServer is an HTTP server of the config.
type pfServer struct {
	name   string
	listen []string
	// trustedProxies and strict are the server's trusted_proxies and
	// trusted_proxies_strict options.
	trustedProxies, strict bool
	// tls is set when provisioning (automatic HTTPS included) gave the
	// server TLS connection policies; known is false when the config did
	// not provision that far.
	tls, known bool
}

// pfHandler is one modulus handler and where it is served.
type pfHandler struct {
	kind string
	// raw is the handler's JSON without its "handler" key.
	raw    []byte
	server *pfServer
	hosts  []string
	paths  []string
	config *pfConfig
}

// loadPreflightConfig reads and adapts the config file as `qrphgate run`
// would: with the named adapter, or the Caddyfile adapter for a file
// called Caddyfile* or *.caddyfile, or as JSON.
func loadPreflightConfig(path, adapter string) (*pfConfig, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	c := &pfConfig{adapter: adapter, handlerNames: map[string]bool{}}
	if c.adapter == "" {
		base := strings.ToLower(filepath.Base(path))
		if strings.HasPrefix(base, "caddyfile") || strings.HasSuffix(base, ".caddyfile") {
			c.adapter = "caddyfile"
		} else {
			c.adapter = "json"
		}
	}
	if c.adapter != "json" {
		adp := caddyconfig.GetAdapter(c.adapter)
		if adp == nil {
			return c, fmt.Errorf("unknown config adapter %q", c.adapter)
		}
		var warns []caddyconfig.Warning
		body, warns, err = adp.Adapt(body, map[string]any{"filename": path})
		if err != nil {
			return c, fmt.Errorf("adapting the config: %w", err)
		}
		for _, w := range warns {
			c.warnings = append(c.warnings, w.String())
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&c.root); err != nil {
		return c, fmt.Errorf("the config is not a JSON object: %w", err)
	}
	if c.root == nil {
		c.root = map[string]any{}
	}
	c.walk()
	return c, nil
}

// walk finds the modulus handlers with their servers, hosts and paths,
// the admin listener and the certificate files.
func (c *pfConfig) walk() {
	if admin, ok := c.root["admin"].(map[string]any); ok {
		c.adminOff, _ = admin["disabled"].(bool)
		c.adminListen, _ = admin["listen"].(string)
	}
	if c.adminListen == "" {
		c.adminListen = caddy.DefaultAdminListen
	}
	apps, _ := c.root["apps"].(map[string]any)
	if app, ok := apps["modulus"].(map[string]any); ok {
		if spec, _ := app["ledger"].(string); spec != "" && spec != "memory" {
			c.ledger = spec
			app["ledger"] = "memory"
		}
		// The audit trail is the gateway's: one writer (the file is
		// locked), never preflight's provisioning.
		delete(app, "audit_log")
	}
	if tlsApp, ok := apps["tls"].(map[string]any); ok {
		certs, _ := tlsApp["certificates"].(map[string]any)
		files, _ := certs["load_files"].([]any)
		for _, f := range files {
			if p, ok := f.(map[string]any)["certificate"].(string); ok {
				c.certFiles = append(c.certFiles, p)
			}
		}
	}
	httpApp, _ := apps["http"].(map[string]any)
	if n, ok := httpApp["http_port"].(json.Number); ok {
		c.httpPort = n.String()
	}
	if n, ok := httpApp["https_port"].(json.Number); ok {
		c.httpsPort = n.String()
	}
	servers, _ := httpApp["servers"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		raw, _ := servers[name].(map[string]any)
		srv := &pfServer{name: name}
		for _, l := range asList(raw["listen"]) {
			if s, ok := l.(string); ok {
				srv.listen = append(srv.listen, s)
			}
		}
		srv.trustedProxies = raw["trusted_proxies"] != nil
		if n, ok := raw["trusted_proxies_strict"].(json.Number); ok {
			v, _ := n.Int64()
			srv.strict = v != 0
		}
		c.walkRoutes(srv, raw["routes"], nil, nil)
		if errs, ok := raw["errors"].(map[string]any); ok {
			c.walkRoutes(srv, errs["routes"], nil, nil)
		}
	}
}

// walkRoutes visits routes, inheriting the host and path matchers of the
// routes (and subroutes) around them.
func (c *pfConfig) walkRoutes(srv *pfServer, routes any, hosts, paths []string) {
	for _, r := range asList(routes) {
		route, _ := r.(map[string]any)
		h, p := hosts, paths
		var rh, rp []string
		for _, set := range asList(route["match"]) {
			m, _ := set.(map[string]any)
			rh = append(rh, stringList(m["host"])...)
			rp = append(rp, stringList(m["path"])...)
		}
		if len(rh) > 0 {
			h = rh
		}
		if len(rp) > 0 {
			p = rp
		}
		for _, hd := range asList(route["handle"]) {
			handler, _ := hd.(map[string]any)
			name, _ := handler["handler"].(string)
			c.handlerNames[name] = true
			switch name {
			case "subroute":
				c.walkRoutes(srv, handler["routes"], h, p)
			case handlerAPI, handlerWebhook, handlerSandbox:
				delete(handler, "handler")
				raw, _ := json.Marshal(handler)
				c.handlers = append(c.handlers, &pfHandler{kind: name, raw: raw, server: srv, hosts: h, paths: p, config: c})
				// Caddy provisions a stand-in in its place (provision).
				for k := range handler {
					delete(handler, k)
				}
				handler["handler"] = "modulus_preflight"
				handler["index"] = len(c.handlers) - 1
			}
		}
	}
}

// provision has Caddy provision the config (without starting it) with
// stand-ins for the modulus handlers, which record their servers' TLS.
// Caddy's default log is silenced (only a fatal error would reach
// stderr): the checklist reports what matters, and a CI job that merges
// stderr into the --json output still gets JSON.
func (c *pfConfig) provision() {
	probe := newPreflightProbe()
	defer probe.unregister()
	for _, h := range c.handlersInJSON() {
		h["run"] = probe.id
	}
	logging, _ := c.root["logging"].(map[string]any)
	if logging == nil {
		logging = map[string]any{}
		c.root["logging"] = logging
	}
	logs, _ := logging["logs"].(map[string]any)
	if logs == nil {
		logs = map[string]any{}
		logging["logs"] = logs
	}
	def, _ := logs["default"].(map[string]any)
	if def == nil {
		def = map[string]any{}
		logs["default"] = def
	}
	def["writer"] = map[string]any{"output": "stderr"}
	def["level"] = "FATAL"

	b, err := json.Marshal(c.root)
	if err == nil {
		var cfg caddy.Config
		if err = caddy.StrictUnmarshalJSON(b, &cfg); err == nil {
			err = caddy.Validate(&cfg)
		}
	}
	c.provisionErr = err
	c.storage = probe.storage()
	for i, h := range c.handlers {
		if tls, ok := probe.serverTLS(i); ok {
			h.server.tls, h.server.known = tls, true
		}
	}
}

// handlersInJSON returns the stand-ins walk left in the JSON tree.
func (c *pfConfig) handlersInJSON() []map[string]any {
	var out []map[string]any
	var visit func(v any)
	visit = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if t["handler"] == "modulus_preflight" {
				out = append(out, t)
				return
			}
			for _, x := range t {
				visit(x)
			}
		case []any:
			for _, x := range t {
				visit(x)
			}
		}
	}
	visit(c.root["apps"])
	return out
}

// of returns the handlers of one kind.
func (c *pfConfig) of(kind string) []*pfHandler {
	var out []*pfHandler
	for _, h := range c.handlers {
		if h.kind == kind {
			out = append(out, h)
		}
	}
	return out
}

// site is where a handler is served: scheme, host (empty when no host
// matcher or specific listen address says), port, and the exact path
// (empty unless one path matcher without wildcards leads to it).
type site struct {
	scheme, host, port, path string
	// publicPort is the port clients use: port, except for a site on the
	// http_port or https_port the config moved (a container that maps 443
	// to 8443 sets https_port 8443), taken as on 80 or 443.
	publicPort string
	// named is true when host comes from a host matcher (the name clients
	// use), not from the listen address.
	named bool
}

func (h *pfHandler) site() site {
	s := site{scheme: "http"}
	if h.server.known && h.server.tls {
		s.scheme = "https"
	}
	for _, host := range h.hosts {
		if !strings.Contains(host, "*") && !strings.Contains(host, "{") {
			s.host, s.named = host, true
			break
		}
	}
	if len(h.server.listen) > 0 {
		if na, err := caddy.ParseNetworkAddress(h.server.listen[0]); err == nil && !na.IsUnixNetwork() {
			s.port = strconv.FormatUint(uint64(na.StartPort), 10)
			if s.host == "" && na.Host != "" {
				if ip := net.ParseIP(na.Host); ip == nil || !ip.IsUnspecified() {
					s.host = na.Host
				}
			}
		}
	}
	if len(h.paths) == 1 && !strings.ContainsAny(h.paths[0], "*{") {
		s.path = h.paths[0]
	}
	s.publicPort = s.port
	switch {
	case s.scheme == "https" && s.port != "" && s.port == h.config.httpsPort:
		s.publicPort = "443"
	case s.scheme == "http" && s.port != "" && s.port == h.config.httpPort:
		s.publicPort = "80"
	}
	return s
}

// hostPort is host:port, the port left out when it is the scheme's default.
func (s site) hostPort(port string) string {
	host := s.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || (s.scheme == "https" && port == "443") || (s.scheme == "http" && port == "80") {
		return host
	}
	return host + ":" + port
}

// String is the site as clients see it, for check subjects.
func (s site) String() string { return s.scheme + "://" + s.hostPort(s.publicPort) + s.path }

// publicURL is the URL the provider posts to, when the config says it: a
// host name, a port and an exact path.
func (s site) publicURL() (string, error) {
	switch {
	case !s.named:
		return "", errors.New("its site has no host name")
	case s.path == "":
		return "", errors.New("no single exact path leads to it")
	}
	return s.String(), nil
}

// baseURL is a loopback-reachable base URL of a site (modulus_api's, for
// the commands preflight prints): its host, else 127.0.0.1.
func (s site) baseURL() string {
	if s.host == "" {
		s.host = "127.0.0.1"
	}
	return s.scheme + "://" + s.hostPort(s.port)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func stringList(v any) []string {
	var out []string
	for _, x := range asList(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
