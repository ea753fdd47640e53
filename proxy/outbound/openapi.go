package outbound

import (
	"net/http"
	"strconv"

	"github.com/qrphgate/qrphgate/proxy"
)

// serveOpenAPI answers GET /openapi.json: the OpenAPI 3.1 document of the
// app's API (proxy/openapi.json, embedded in the binary), so a client
// generator or an API browser can be pointed at the sidecar itself.
func (o *Handler) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	const endpoint = "openapi"
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		o.fail(w, r, endpoint, newErr(http.StatusMethodNotAllowed, proxy.CodeMethodNotAllowed, "", "use GET"))
		return
	}
	doc := proxy.OpenAPI()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
	o.obs.Response(endpoint, http.StatusOK, "")
}
