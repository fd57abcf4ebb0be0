package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/xmlstream"
)

// ChatOptions configures the chat scenario.
type ChatOptions struct {
	// Users is how many accounts are online (each sends and receives).
	Users int
	// Rates are the aggregate message rates (messages/s, Poisson
	// arrivals) of the steps run one after the other. With Search, the
	// first is where the search starts.
	Rates []float64
	// Duration is how long each step sends.
	Duration time.Duration
	// Drain is how long after a step's last message the generator waits
	// for the rest; what has not arrived then is lost.
	Drain time.Duration
	// BodyBytes is the length of each message's body.
	BodyBytes int
	// Search runs a capacity search after the given rates: the rate is
	// multiplied by Factor while steps pass, then bisected between the
	// last passing and the first failing step.
	Search bool
	// Factor is the search's step-up factor (default 2).
	Factor float64
	// MaxP99 is the search's latency limit (default 100 ms): a step
	// passes when its p99 is under it and nothing was lost.
	MaxP99 time.Duration
	// MaxRate bounds the search; MaxSteps bounds the number of steps.
	MaxRate  float64
	MaxSteps int
	// Precision ends the bisection when the failing rate is within this
	// fraction of the passing one (default 0.05).
	Precision float64
	// Concurrency bounds the logins in progress at once while users come
	// online.
	Concurrency int
}

// ChatStep is one step of the chat scenario at one rate.
type ChatStep struct {
	// Rate is the rate asked for; SentRate is what was sent over the
	// step's duration (Poisson arrivals vary around Rate).
	Rate     float64 `json:"rate"`
	SentRate float64 `json:"sent_rate"`
	// SendTime is how long sending took: more than the duration when the
	// generator (or a server not reading) fell behind the schedule.
	SendTime Duration `json:"send_time_ms"`
	// Sent, Delivered and Lost count messages (Lost: not delivered
	// within the drain time); DeliveredRate is Delivered over the step's
	// duration.
	Sent          int     `json:"sent"`
	Delivered     int     `json:"delivered"`
	Lost          int     `json:"lost"`
	DeliveredRate float64 `json:"delivered_rate"`
	// Latency is from each message's scheduled send time to its arrival.
	Latency Latency `json:"latency_ms"`
	// Usage is the step's CPU time, from its start to the end of its drain.
	Usage Usage `json:"usage"`
	// ServerCPUPerMessage and BenchCPUPerMessage divide the CPU times by
	// the messages delivered.
	ServerCPUPerMessage Duration `json:"server_cpu_per_msg_ms,omitempty"`
	BenchCPUPerMessage  Duration `json:"bench_cpu_per_msg_ms"`
	// Pass says whether p99 stayed under the limit with nothing lost and
	// the generator kept to its schedule.
	Pass bool `json:"pass"`
	// Note says why a step did not pass.
	Note string `json:"note,omitempty"`
}

// ChatResult is what the chat scenario measured.
type ChatResult struct {
	Options ChatOptions `json:"options"`
	Steps   []ChatStep  `json:"steps"`
	// Capacity is the highest rate of a passing step (0 if none passed).
	Capacity float64 `json:"capacity"`
	// LoginElapsed is how long the users took to come online.
	LoginElapsed Duration `json:"login_elapsed_ms"`
}

// chatStep is a step's live counters, shared with the receivers.
type chatStep struct {
	sent, received atomic.Int64
	lat            recorder
}

// chatRun is one chat scenario's state.
type chatRun struct {
	t       Target
	o       ChatOptions
	clients []*client.Client
	to      [][]byte // "<message to='bare JID'" per user
	steps   steps
	closed  atomic.Int64 // sessions the server ended
}

// Chat runs the chat scenario: Users accounts online with presence, 1:1
// chat messages from random senders to random other users at each rate,
// each message carrying its scheduled send time, which the receiver
// subtracts from its arrival time.
func Chat(ctx context.Context, t Target, accounts []Account, o ChatOptions) (*ChatResult, error) {
	if err := o.defaults(len(accounts)); err != nil {
		return nil, err
	}
	r := &chatRun{t: t, o: o}
	start := time.Now()
	cs, err := online(ctx, t, accounts[:o.Users], o.Concurrency, true)
	if err != nil {
		return nil, fmt.Errorf("bench: chat: %w", err)
	}
	defer closeAll(cs)
	r.clients = cs
	for _, a := range accounts[:o.Users] {
		r.to = append(r.to, []byte("<message to='"+a.JID.Bare().String()+"' type='chat' id='"))
	}
	res := &ChatResult{Options: o, LoginElapsed: Duration(time.Since(start))}
	rctx, stopReceivers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.receive(rctx, c)
		}()
	}
	defer func() {
		stopReceivers()
		wg.Wait()
	}()
	run := func(rate float64) (ChatStep, error) {
		st := r.step(ctx, rate)
		res.Steps = append(res.Steps, st)
		if st.Pass {
			res.Capacity = max(res.Capacity, st.Rate)
		}
		if r.closed.Load() > 0 {
			return st, errClosed
		}
		return st, ctx.Err()
	}
	for _, rate := range o.Rates {
		if len(res.Steps) >= o.MaxSteps {
			break
		}
		if _, err := run(rate); err != nil {
			return res, fmt.Errorf("bench: chat: %w", err)
		}
	}
	if o.Search {
		if err := r.search(res, run); err != nil {
			return res, fmt.Errorf("bench: chat: %w", err)
		}
	}
	return res, nil
}

func (o *ChatOptions) defaults(accounts int) error {
	if o.Users < 2 {
		return errors.New("bench: chat: at least 2 users")
	}
	if o.Users > accounts {
		return fmt.Errorf("bench: chat: %d users but %d accounts", o.Users, accounts)
	}
	if err := checkRates("chat", o.Rates, 1e7); err != nil {
		return err
	}
	stepDefaults(&o.Duration, &o.Drain, &o.BodyBytes)
	if o.Factor <= 1 {
		o.Factor = 2
	}
	if o.MaxP99 <= 0 {
		o.MaxP99 = 100 * time.Millisecond
	}
	if o.MaxRate <= 0 {
		o.MaxRate = 1e6
	}
	if o.MaxSteps <= 0 {
		o.MaxSteps = 16
	}
	if o.Precision <= 0 {
		o.Precision = 0.05
	}
	o.Concurrency = max(1, o.Concurrency)
	return nil
}

// checkRates checks a scenario's step rates: at least one, each in
// (0, most].
func checkRates(scenario string, rates []float64, most float64) error {
	if len(rates) == 0 {
		return fmt.Errorf("bench: %s: no rate", scenario)
	}
	for _, r := range rates {
		if r <= 0 || r > most {
			return fmt.Errorf("bench: %s: rate %g out of range", scenario, r)
		}
	}
	return nil
}

// stepDefaults fills in a stepped scenario's defaults: 10 s steps, 5 s of
// drain, bodies of at least 40 bytes (room for the send time).
func stepDefaults(duration, drain *time.Duration, bodyBytes *int) {
	if *duration <= 0 {
		*duration = 10 * time.Second
	}
	if *drain <= 0 {
		*drain = 5 * time.Second
	}
	*bodyBytes = max(*bodyBytes, 40)
}

// search steps the rate up from the last step while steps pass, then
// bisects between the highest passing and lowest failing rates.
func (r *chatRun) search(res *ChatResult, run func(float64) (ChatStep, error)) error {
	o := r.o
	lo, hi := 0.0, 0.0 // highest passing, lowest failing
	for _, st := range res.Steps {
		if st.Pass {
			lo = max(lo, st.Rate)
		} else if hi == 0 || st.Rate < hi {
			hi = st.Rate
		}
	}
	if len(res.Steps) == 0 {
		st, err := run(o.Rates[0])
		if err != nil {
			return err
		}
		if st.Pass {
			lo = st.Rate
		} else {
			hi = st.Rate
		}
	}
	for hi == 0 && len(res.Steps) < o.MaxSteps {
		rate := min(lo*o.Factor, o.MaxRate)
		if rate <= lo {
			return nil // passed at MaxRate
		}
		st, err := run(rate)
		if err != nil {
			return err
		}
		if st.Pass {
			lo = rate
		} else {
			hi = rate
		}
	}
	for hi > 0 && hi-lo > o.Precision*max(lo, hi/2) && len(res.Steps) < o.MaxSteps {
		mid := (lo + hi) / 2
		if lo == 0 {
			mid = hi / o.Factor
		}
		st, err := run(float64(int(mid)))
		if err != nil {
			return err
		}
		if st.Pass {
			lo = st.Rate
		} else {
			hi = st.Rate
		}
	}
	return nil
}

// workers is how many goroutines send: each owns every workers-th user
// and produces a Poisson stream at rate/workers.
const workers = 4

// step sends at rate for the step's duration, waits for the messages to
// arrive (or the drain time to pass) and summarises.
func (r *chatRun) step(ctx context.Context, rate float64) ChatStep {
	s := &chatStep{}
	id := r.steps.add(s)

	meter := startUsage(r.t)
	start := time.Now()
	end := start.Add(r.o.Duration)
	var wg sync.WaitGroup
	n := min(workers, len(r.clients))
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.send(ctx, s, id, w, n, rate/float64(n), start, end)
		}()
	}
	wg.Wait()
	sentFor := time.Since(start)
	// Drain: wait for the messages in flight.
	deadline := time.Now().Add(r.o.Drain)
	tick := time.NewTicker(10 * time.Millisecond)
	for s.received.Load() < s.sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil && r.closed.Load() == 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	tick.Stop()
	u := meter.stop()
	sent, got := int(s.sent.Load()), int(s.received.Load())
	st := ChatStep{
		Rate: rate, SentRate: float64(sent) / r.o.Duration.Seconds(),
		Sent: sent, Delivered: got, Lost: max(0, sent-got),
		DeliveredRate: float64(got) / r.o.Duration.Seconds(),
		SendTime:      Duration(sentFor),
		Latency:       s.lat.summary(), Usage: u,
	}
	if got > 0 {
		st.BenchCPUPerMessage = u.BenchCPU / Duration(got)
		if u.Server {
			st.ServerCPUPerMessage = u.ServerCPU / Duration(got)
		}
	}
	switch {
	case r.closed.Load() > 0:
		st.Note = fmt.Sprintf("the server closed %d sessions", r.closed.Load())
	case st.Lost > 0:
		st.Note = fmt.Sprintf("%d lost", st.Lost)
	case time.Duration(st.Latency.P99) > r.o.MaxP99:
		st.Note = "p99 over " + r.o.MaxP99.String()
	case sentFor > r.o.Duration+max(r.o.MaxP99, r.o.Duration/20):
		st.Note = "the generator fell behind"
	default:
		st.Pass = true
	}
	if st.Lost > 0 {
		r.settle(ctx, s)
	}
	return st
}

// settle waits, after a step that lost messages, until nothing more
// arrives for a second (at most a minute), so that a server still
// working off a backlog does not carry it into the next step.
func (r *chatRun) settle(ctx context.Context, s *chatStep) {
	limit := time.Now().Add(time.Minute)
	last := s.received.Load()
	for time.Now().Before(limit) && ctx.Err() == nil && r.closed.Load() == 0 {
		wait(ctx, time.Second)
		n := s.received.Load()
		if n == last {
			return
		}
		last = n
	}
}

// send is one sender worker: a Poisson stream of messages at rate from
// the users w, w+n, w+2n, … to random other users, until end.
func (r *chatRun) send(ctx context.Context, s *chatStep, step, w, n int, rate float64, start, end time.Time) {
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
	users := len(r.clients)
	own := (users - w + n - 1) / n
	buf := make([]byte, 0, 256+r.o.BodyBytes)
	next := start
	for seq := 0; ctx.Err() == nil; seq++ {
		next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
		if next.After(end) {
			return
		}
		if d := time.Until(next); d > 0 {
			wait(ctx, d)
		}
		from := w + n*rng.IntN(own)
		to := rng.IntN(users - 1)
		if to >= from {
			to++
		}
		buf = r.message(buf[:0], to, step, w, seq, next)
		if err := r.clients[from].SendRaw(buf); err != nil {
			return
		}
		s.sent.Add(1)
	}
}

// message appends a chat message to user to whose body is
// "ode-bench STEP WORKER SEQ UNIXNANO" padded to BodyBytes.
func (r *chatRun) message(b []byte, to, step, w, seq int, at time.Time) []byte {
	b = append(b, r.to[to]...)
	b = strconv.AppendInt(b, int64(w), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, "'><body>"...)
	body := len(b)
	b = append(b, bodyPrefix...)
	b = strconv.AppendInt(b, int64(step), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, at.UnixNano(), 10)
	b = append(b, ' ')
	for len(b)-body < r.o.BodyBytes {
		b = append(b, 'x')
	}
	return append(b, "</body></message>"...)
}

const bodyPrefix = "ode-bench "

// receive reads c's stanzas until ctx ends, timing the bench messages.
func (r *chatRun) receive(ctx context.Context, c *client.Client) {
	for {
		e, err := c.Recv(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.closed.Add(1)
			}
			return
		}
		now := time.Now()
		if e.Name.Local != "message" {
			continue
		}
		r.steps.record(e, now)
	}
}

// steps are a run's steps, which the receivers count messages into.
type steps struct {
	mu   sync.RWMutex
	list []*chatStep
}

// add appends s and returns its number.
func (st *steps) add(s *chatStep) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.list = append(st.list, s)
	return len(st.list) - 1
}

// record counts message e, which arrived at now, into its step when it
// is a bench message (its body names the step and the send time).
func (st *steps) record(e *xmlstream.Element, now time.Time) {
	body := e.Child(e.Name.Space, "body")
	if body == nil {
		return
	}
	step, at, ok := parseBody(body.Text())
	if !ok {
		return
	}
	st.mu.RLock()
	var s *chatStep
	if step < len(st.list) {
		s = st.list[step]
	}
	st.mu.RUnlock()
	if s == nil {
		return
	}
	s.received.Add(1)
	s.lat.add(now.Sub(time.Unix(0, at)))
}

// parseBody reads the step and send time from a bench message's body.
func parseBody(text string) (step int, at int64, ok bool) {
	b := []byte(text)
	if !bytes.HasPrefix(b, []byte(bodyPrefix)) {
		return 0, 0, false
	}
	f := bytes.Fields(b[len(bodyPrefix):])
	if len(f) < 2 {
		return 0, 0, false
	}
	st, err1 := strconv.Atoi(string(f[0]))
	t, err2 := strconv.ParseInt(string(f[1]), 10, 64)
	if err1 != nil || err2 != nil || st < 0 {
		return 0, 0, false
	}
	return st, t, true
}
