package server

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/sync/errgroup"
)

// A task waits for its gates: "journal" starts only once "login" opened
// the gate, whatever order the group runs them in.
func TestTasksWaitForGates(t *testing.T) {
	var ev events
	loggedIn := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	start(gctx, g, []task{
		{name: "journal", after: []gate{{"login", loggedIn}, {"always open", nil}}, run: func(context.Context) error {
			ev.add("journal ran")
			cancel()
			return nil
		}},
		{name: "login", run: func(context.Context) error {
			ev.add("logged in")
			close(loggedIn)
			return nil
		}},
	}, discard)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if i, j := ev.index("logged in"), ev.index("journal ran"); i < 0 || j < i {
		t.Errorf("events %v: the journal must run after the login", ev.list())
	}
}

// A task whose gate never opens never runs, and does not hold up the
// group once ctx ends.
func TestTasksGateNeverOpens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	ran := false
	start(gctx, g, []task{
		{name: "peppers", after: []gate{{"login", make(chan struct{})}}, run: func(context.Context) error { ran = true; return nil }},
		{name: "stopper", run: func(context.Context) error { cancel(); return nil }},
	}, discard)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("a task ran before its gate opened")
	}
}

// A failing task's error is the group's, and ends the others' ctx; a task
// that returns its ctx's error after being told to stop is no failure.
func TestTasksErrors(t *testing.T) {
	boom := errors.New("watch: file gone")
	g, gctx := errgroup.WithContext(context.Background())
	start(gctx, g, []task{
		{name: "watch", run: func(context.Context) error { return boom }},
		{name: "login", run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	}, discard)
	if err := g.Wait(); !errors.Is(err, boom) {
		t.Errorf("group error %v, want %v", err, boom)
	}

	ctx, cancel := context.WithCancel(context.Background())
	g, gctx = errgroup.WithContext(ctx)
	start(gctx, g, []task{{name: "login", run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}}, discard)
	cancel()
	if err := g.Wait(); err != nil {
		t.Errorf("a task stopped by its ctx: %v, want nil", err)
	}
}
