package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFakeFiresInOrder(t *testing.T) {
	f := NewFake(time.Time{})
	start := f.Now()
	late, early := f.NewTimer(2*time.Second), f.NewTimer(time.Second)
	f.Advance(500 * time.Millisecond)
	select {
	case <-early.C():
		t.Fatal("fired early")
	default:
	}
	f.Advance(time.Second)
	if at := <-early.C(); !at.Equal(start.Add(time.Second)) {
		t.Fatalf("early fired at %v", at)
	}
	if !late.Stop() || late.Stop() {
		t.Fatal("Stop should report active once")
	}
	f.Advance(time.Hour)
	select {
	case <-late.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if got := f.Now().Sub(start); got != time.Hour+1500*time.Millisecond {
		t.Fatalf("now advanced by %v", got)
	}
}

func TestSleep(t *testing.T) {
	f := NewFake(time.Time{})
	done := make(chan error, 1)
	go func() { done <- Sleep(context.Background(), f, time.Minute) }()
	if !f.WaitForTimers(1, 5*time.Second) {
		t.Fatal("sleeper never waited")
	}
	f.Advance(time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- Sleep(ctx, f, time.Minute) }()
	f.WaitForTimers(1, 5*time.Second)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sleep: %v", err)
	}
	if f.WaitForTimers(5, 10*time.Millisecond) {
		t.Fatal("WaitForTimers reported timers that do not exist")
	}
}

func TestRealClock(t *testing.T) {
	c := Real()
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	if c.Now().IsZero() {
		t.Fatal("zero time")
	}
}

func TestWaitForTimerAt(t *testing.T) {
	f := NewFake(time.Time{})
	at := f.Now().Add(3 * time.Second)
	if f.WaitForTimerAt(at, 10*time.Millisecond) {
		t.Fatal("no timer, yet the wait succeeded")
	}
	f.NewTimer(time.Second)
	if f.WaitForTimerAt(at, 10*time.Millisecond) {
		t.Fatal("a timer at another instant satisfied the wait")
	}
	go f.NewTimer(3 * time.Second)
	if !f.WaitForTimerAt(at, 10*time.Second) {
		t.Fatal("the timer at the instant was not seen")
	}
}
