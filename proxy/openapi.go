package proxy

import _ "embed"

// openAPI is proxy/openapi.json, the OpenAPI 3.1 document of what the app
// touches: modulus_api's endpoints and errors (paths) and the delivery
// modulus_webhook makes to the app (webhooks). It lives here, beside the
// error format and the header names both directions share, because it
// describes both; modulus_api serves it at GET /openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI document of the app's API. The slice is
// shared: callers must not modify it.
func OpenAPI() []byte { return openAPI }
