package inbound

import "time"

// Observer receives the inbound side's measurements, from the receiving
// pipeline and the Deliverer; the Caddy adapter turns them into Prometheus
// metrics. Every label it is given comes from a small fixed set (Results,
// Outcomes), never from request data. It is the one way the inbound engine
// reports events, as outbound.Observer is for the outbound one.
type Observer interface {
	// Received records one webhook the pipeline answered: its result and
	// how long the answer took.
	Received(result string, elapsed time.Duration)
	// Attempted records one delivery attempt: its outcome and duration.
	Attempted(outcome string, elapsed time.Duration)
	// Delivered records a successful delivery and the time since receipt.
	Delivered(sinceReceived time.Duration)
	// DeadLettered records an event's move to the dead letters, with its
	// reason (DeadLetterReasons).
	DeadLettered(reason string)
	// LimiterFailedOpen records a webhook let through without a rate
	// limit because the limiter's store could not be reached.
	LimiterFailedOpen()
}

// NopObserver discards everything.
type NopObserver struct{}

func (NopObserver) Received(string, time.Duration)  {}
func (NopObserver) Attempted(string, time.Duration) {}
func (NopObserver) Delivered(time.Duration)         {}
func (NopObserver) DeadLettered(string)             {}
func (NopObserver) LimiterFailedOpen()              {}

var _ Observer = NopObserver{}
