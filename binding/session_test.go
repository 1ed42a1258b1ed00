package binding

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Two generations on one model loaded with Sessions: 2 run at the same
// time, and each image is byte-identical to its serial run. That they
// overlap is checked by construction, not by timing: after its first
// sampler step each request waits (in its progress callback) until the
// other has finished a step too, which can only happen if both are in
// flight at once; with one session the first would wait forever (the test
// fails after a minute instead). How much faster two sessions are is a
// benchmark (BenchmarkTwoSessions), not a test.
func TestSessionsRunConcurrently(t *testing.T) {
	lib := loadLib(t)
	m, err := lib.LoadModel(tinyModel, ModelOptions{Threads: 1, Sessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reqs := twoRequests()
	serial := make([]*Result, 2)
	for i, r := range reqs {
		if serial[i], err = m.Generate(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if string(serial[0].Images[0].Pix) == string(serial[1].Images[0].Pix) {
		t.Fatal("the two requests gave the same image")
	}
	stepped := []chan struct{}{make(chan struct{}), make(chan struct{})}
	waitErr := make([]error, 2)
	for i := range reqs {
		var once sync.Once
		reqs[i].Progress = func(p Progress) {
			if p.Phase != PhaseSample {
				return
			}
			once.Do(func() {
				close(stepped[i])
				select {
				case <-stepped[1-i]:
				case <-time.After(time.Minute):
					waitErr[i] = errors.New("the other generation never ran a step while this one was in flight")
				}
			})
		}
	}
	var wg sync.WaitGroup
	got := make([]*Result, 2)
	errs := make([]error, 2)
	for i := range reqs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = m.Generate(context.Background(), reqs[i])
		}(i)
	}
	wg.Wait()
	for i := range reqs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if waitErr[i] != nil {
			t.Fatalf("request %d: %v", i, waitErr[i])
		}
		if string(got[i].Images[0].Pix) != string(serial[i].Images[0].Pix) {
			t.Fatalf("concurrent image %d differs from its serial run", i)
		}
	}
}

// twoRequests are two different tiny generations, large enough that compute,
// not call overhead, dominates.
func twoRequests() []Request {
	reqs := []Request{tinyRequest(), tinyRequest()}
	for i := range reqs {
		reqs[i].Width, reqs[i].Height, reqs[i].Steps = 64, 64, 20
	}
	reqs[1].Seed, reqs[1].Prompt, reqs[1].Sampler = 7, "a lighthouse", "dpm++2m"
	return reqs
}

func TestSessionOwnAndAfterModelClose(t *testing.T) {
	m := loadTiny(t, tinyModel)
	want, err := m.Generate(context.Background(), tinyRequest())
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m.Close()
	// the session keeps the engine's model alive
	got, err := s.Generate(context.Background(), tinyRequest())
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Images[0].Pix) != string(want.Images[0].Pix) {
		t.Fatal("a session's image differs from Model.Generate's")
	}
	if _, err := m.NewSession(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewSession on a closed model: %v", err)
	}
	s.Close()
	if _, err := s.Generate(context.Background(), tinyRequest()); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed session gave %v", err)
	}
}

// Close waits for running generations and fails the ones still waiting for
// a session.
func TestModelCloseWhileBusy(t *testing.T) {
	m := loadTiny(t, tinyModel)
	started := make(chan struct{})
	var once sync.Once
	req := tinyRequest()
	req.Steps = 40
	req.Progress = func(Progress) { once.Do(func() { close(started) }) }
	errs := make(chan error, 2)
	go func() { _, err := m.Generate(context.Background(), req); errs <- err }()
	<-started
	go func() { _, err := m.Generate(context.Background(), tinyRequest()); errs <- err }()
	time.Sleep(10 * time.Millisecond) // let the second call queue for the one session
	m.Close()
	var ok, closed int
	for i := 0; i < 2; i++ {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, ErrClosed):
			closed++
		default:
			t.Fatal(err)
		}
	}
	if ok < 1 || ok+closed != 2 {
		t.Fatalf("%d finished, %d closed", ok, closed)
	}
}

func TestProgressPanicIsAnError(t *testing.T) {
	m := loadTiny(t, tinyModel)
	req := tinyRequest()
	req.Progress = func(p Progress) {
		if p.Phase == PhaseSample && p.Step == 3 {
			panic("boom")
		}
	}
	_, err := m.Generate(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v, want the panic as an error", err)
	}
	if _, err := m.Generate(context.Background(), tinyRequest()); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
}

func TestRequestsRefuseNUL(t *testing.T) {
	m := loadTiny(t, tinyModel)
	req := tinyRequest()
	req.Prompt = "a cat\x00 and a dog"
	if _, err := m.Generate(context.Background(), req); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("prompt with NUL: %v", err)
	}
	if _, err := loadLib(t).LoadModel(tinyModel+"\x00x", ModelOptions{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("path with NUL: %v", err)
	}
}

func TestCatalogAndDefaults(t *testing.T) {
	lib := loadLib(t)
	cat, err := lib.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	d := cat.Defaults
	if d.Width != 512 || d.Height != 512 || d.Steps != 20 || d.CFGScale != 7 || d.Sampler != "euler_a" ||
		d.Scheduler != "discrete" || d.Strength != 0.75 || d.BatchCount != 1 || d.RNG != "cuda" {
		t.Fatalf("defaults %+v", d)
	}
	for _, want := range []string{"euler", "euler_a", "dpm++2m", "lcm", "ddim"} {
		if !contains(cat.Samplers, want) {
			t.Errorf("samplers %v lack %s", cat.Samplers, want)
		}
	}
	if d.VAETiling != "auto" || d.VAETileSize != 512 || d.VAETileOverlap != 64 || !contains(cat.VAETiling, "on") {
		t.Fatalf("VAE tiling defaults %q %d %d, modes %v", d.VAETiling, d.VAETileSize, d.VAETileOverlap, cat.VAETiling)
	}
	if !contains(cat.Schedulers, "karras") || !contains(cat.WeightTypes, "q4_0") || cat.Limits.MaxBatch <= 0 {
		t.Fatalf("catalog %+v", cat)
	}
	// a generation reports the defaults it used, and the engine's seeds
	m := loadTiny(t, tinyModel)
	req := tinyRequest()
	req.Sampler, req.Scheduler, req.CFGScale, req.BatchCount = "", "", 0, 2
	req.Seed = 1<<63 - 1
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	p := res.Params
	if p.Sampler != "euler_a" || p.Scheduler != "discrete" || p.CFGScale != 7 || p.Steps != 8 || p.RNG != "cpu" {
		t.Fatalf("params %+v", p)
	}
	if len(res.Seeds) != 2 || res.Seeds[0] != 1<<63-1 || res.Seeds[1] != -1<<63 {
		t.Fatalf("seeds %v (want the second to wrap)", res.Seeds)
	}
}

// With one session busy, a second request waits its turn; canceling its
// context while it waits returns at once with the context's error, and a
// third request that waits without a deadline runs when the session frees.
func TestWaitingRequestHonoursItsContext(t *testing.T) {
	m := loadTiny(t, tinyModel)
	started := make(chan struct{})
	var once sync.Once
	long := tinyRequest()
	long.Steps = 60
	long.Progress = func(Progress) { once.Do(func() { close(started) }) }
	first := make(chan error, 1)
	go func() { _, err := m.Generate(context.Background(), long); first <- err }()
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() { _, err := m.Generate(ctx, tinyRequest()); waiting <- err }()
	third := make(chan error, 1)
	go func() { _, err := m.Generate(context.Background(), tinyRequest()); third <- err }()
	time.Sleep(20 * time.Millisecond) // both queue for the one session
	cancel()
	select {
	case err := <-waiting:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled waiter: %v", err)
		}
	case <-first:
		t.Fatal("the first generation finished before the canceled waiter returned")
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-third; err != nil {
		t.Fatalf("the patient waiter: %v", err)
	}
}
