package sandbox

// Observer receives the simulator's measurements; the Caddy adapter turns
// them into Prometheus metrics. Labels come from fixed sets (endpoint
// names, HTTP statuses, outcomes).
type Observer interface {
	// Request records one API answer: the endpoint and its status.
	Request(endpoint string, status int)
	// Attempt records one webhook delivery attempt: "delivered" or
	// "failed".
	Attempt(outcome string)
}

// NopObserver discards everything.
type NopObserver struct{}

func (NopObserver) Request(string, int) {}
func (NopObserver) Attempt(string)      {}

var _ Observer = NopObserver{}
