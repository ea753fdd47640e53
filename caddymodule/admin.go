package caddymodule

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin adds qrphgate's routes to Caddy's admin API (loaded automatically,
// like every admin.api.* module): GET /modulus/status, and the routes
// features add with addAdminRoute.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.modulus",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Routes implements caddy.AdminRouter.
func (Admin) Routes() []caddy.AdminRoute {
	routes := []caddy.AdminRoute{{Pattern: "/modulus/status", Handler: caddy.AdminHandlerFunc(handleStatus)}}
	adminRoutesMu.Lock()
	defer adminRoutesMu.Unlock()
	return append(routes, extraAdminRoutes...)
}

var (
	adminRoutesMu    sync.Mutex
	extraAdminRoutes []caddy.AdminRoute
)

// addAdminRoute registers a further admin route; call it from init.
func addAdminRoute(pattern string, h caddy.AdminHandlerFunc) {
	adminRoutesMu.Lock()
	defer adminRoutesMu.Unlock()
	extraAdminRoutes = append(extraAdminRoutes, caddy.AdminRoute{Pattern: pattern, Handler: h})
}

func handleStatus(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethodNotAllowed}
	}
	return writeAdminJSON(w, http.StatusOK, status.snapshot())
}

func writeAdminJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// statusBoard collects the live components that report into GET
// /modulus/status, by section ("outbound", "inbound", ...) and instance name.
// Components register when they are created in their UsagePool and
// unregister when the pool destroys them, so a reload never shows stale
// entries.
type statusBoard struct {
	mu      sync.RWMutex
	seq     uint64
	sources map[string]map[string]statusSource
}

type statusSource struct {
	id  uint64
	get func() any
}

var status = &statusBoard{sources: make(map[string]map[string]statusSource)}

// register adds a source and returns the function that removes it (and only
// it, even if another source took the same name since).
func (b *statusBoard) register(section, name string, get func() any) (unregister func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	id := b.seq
	if b.sources[section] == nil {
		b.sources[section] = make(map[string]statusSource)
	}
	b.sources[section][name] = statusSource{id: id, get: get}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if s, ok := b.sources[section][name]; ok && s.id == id {
			delete(b.sources[section], name)
		}
	}
}

func (b *statusBoard) snapshot() map[string]map[string]any {
	b.mu.RLock()
	type entry struct {
		section, name string
		get           func() any
	}
	var entries []entry
	for sec, m := range b.sources {
		for name, s := range m {
			entries = append(entries, entry{sec, name, s.get})
		}
	}
	b.mu.RUnlock()
	sort.Slice(entries, func(i, j int) bool {
		return entries[i].section+"\x00"+entries[i].name < entries[j].section+"\x00"+entries[j].name
	})
	out := make(map[string]map[string]any)
	for _, e := range entries { // sources are called without the lock held
		if out[e.section] == nil {
			out[e.section] = make(map[string]any)
		}
		out[e.section][e.name] = e.get()
	}
	return out
}

// Interface guards.
var _ caddy.AdminRouter = (*Admin)(nil)
