package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// MUC namespaces (XEP-0045).
const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCUser  = nsMUC + "#user"
	nsMUCOwner = nsMUC + "#owner"
)

// MUCOptions configures the muc scenario.
type MUCOptions struct {
	// Users is how many accounts are online; they are dealt round-robin
	// into Rooms rooms, each user an occupant of one.
	Users int
	// Rooms is how many rooms there are (default 1).
	Rooms int
	// Service is the MUC service's domain (such as conference.localhost).
	Service string
	// Rates are the aggregate rates (messages/s into all rooms, Poisson
	// arrivals) of the steps; each message comes from a random occupant
	// into its room and every occupant, the sender too, gets a copy.
	Rates []float64
	// Duration, Drain and BodyBytes are as in ChatOptions.
	Duration  time.Duration
	Drain     time.Duration
	BodyBytes int
	// MaxP99 is the latency limit a step must keep to pass.
	MaxP99 time.Duration
	// Concurrency bounds the logins in progress at once.
	Concurrency int
}

// MUCStep is one step of the muc scenario at one rate.
type MUCStep struct {
	// Rate, SentRate, SendTime and Sent are as in ChatStep (messages).
	Rate     float64  `json:"rate"`
	SentRate float64  `json:"sent_rate"`
	SendTime Duration `json:"send_time_ms"`
	Sent     int      `json:"sent"`
	// Copies is how many copies the sent messages make (the occupants of
	// each message's room), Delivered how many arrived within the drain
	// time, Lost the rest; CopyRate is Delivered over the duration.
	Copies    int     `json:"copies"`
	Delivered int     `json:"delivered"`
	Lost      int     `json:"lost"`
	CopyRate  float64 `json:"copy_rate"`
	// Latency is from a message's scheduled send time to each copy's
	// arrival.
	Latency Latency `json:"latency_ms"`
	// Usage is the step's CPU time; ServerCPUPerCopy and BenchCPUPerCopy
	// divide it by the copies delivered.
	Usage            Usage    `json:"usage"`
	ServerCPUPerCopy Duration `json:"server_cpu_per_copy_ms,omitempty"`
	BenchCPUPerCopy  Duration `json:"bench_cpu_per_copy_ms"`
	// Pass and Note are as in ChatStep.
	Pass bool   `json:"pass"`
	Note string `json:"note,omitempty"`
}

// MUCResult is what the muc scenario measured.
type MUCResult struct {
	Options MUCOptions `json:"options"`
	// LoginElapsed is how long the users took to come online.
	LoginElapsed Duration `json:"login_elapsed_ms"`
	// JoinElapsed is how long all occupants took to join their rooms;
	// LastJoin is the longest single join (from the presence sent to the
	// occupant's own presence back), which is the last occupant's of a
	// room as it receives every other occupant's presence first.
	JoinElapsed Duration `json:"join_elapsed_ms"`
	LastJoin    Duration `json:"last_join_ms"`
	// Server says whether the server's memory was measured; KiBPerOccupant
	// is the growth of its resident set from before the joins to after,
	// per occupant.
	Server         bool      `json:"server_measured"`
	KiBPerOccupant float64   `json:"kib_per_occupant,omitempty"`
	Steps          []MUCStep `json:"steps"`
}

// mucRun is one muc scenario's state.
type mucRun struct {
	t       Target
	o       MUCOptions
	clients []*client.Client
	room    []int    // each user's room
	members [][]int  // each room's users
	to      [][]byte // "<message to='room' type='groupchat' id='" per room
	steps   steps
	joined  []chan joinResult // per user: its own presence came back
}

func (o *MUCOptions) defaults(accounts int) error {
	if o.Users < 1 || o.Users > accounts {
		return fmt.Errorf("bench: muc: %d users for %d accounts", o.Users, accounts)
	}
	o.Rooms = max(o.Rooms, 1)
	if o.Rooms > o.Users {
		return fmt.Errorf("bench: muc: %d rooms for %d users: every room needs an occupant", o.Rooms, o.Users)
	}
	if o.Service == "" {
		return errors.New("bench: muc: no MUC service domain")
	}
	if err := checkRates("muc", o.Rates, 1e6); err != nil {
		return err
	}
	stepDefaults(&o.Duration, &o.Drain, &o.BodyBytes)
	if o.MaxP99 <= 0 {
		o.MaxP99 = 100 * time.Millisecond
	}
	o.Concurrency = max(1, o.Concurrency)
	return nil
}

// MUC runs the muc scenario: Users accounts online, dealt into Rooms
// rooms of the Service (created as instant rooms by their first
// occupant), then groupchat messages from random occupants at each rate;
// every copy's latency is measured.
func MUC(ctx context.Context, t Target, accounts []Account, o MUCOptions) (*MUCResult, error) {
	if err := o.defaults(len(accounts)); err != nil {
		return nil, err
	}
	r := &mucRun{t: t, o: o, members: make([][]int, o.Rooms)}
	res := &MUCResult{Options: o}
	start := time.Now()
	cs, err := online(ctx, t, accounts[:o.Users], o.Concurrency, true)
	if err != nil {
		return nil, fmt.Errorf("bench: muc: %w", err)
	}
	defer closeAll(cs)
	r.clients = cs
	res.LoginElapsed = Duration(time.Since(start))
	for i := range cs {
		k := i % o.Rooms
		r.room = append(r.room, k)
		r.members[k] = append(r.members[k], i)
	}
	for k := range o.Rooms {
		r.to = append(r.to, []byte("<message to='"+r.roomJID(k)+"' type='groupchat' id='"))
	}

	// The receivers read from the start: while a room fills, every
	// occupant gets each newcomer's presence.
	rctx, stopReceivers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	closed := make(chan struct{}, len(cs))
	r.joined = make([]chan joinResult, len(cs))
	for i := range cs {
		r.joined[i] = make(chan joinResult, 1)
	}
	for i, c := range cs {
		self := r.roomJID(r.room[i]) + "/u" + strconv.Itoa(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !r.receive(rctx, c, self, r.joined[i]) {
				closed <- struct{}{}
			}
		}()
	}
	defer func() {
		stopReceivers()
		wg.Wait()
	}()

	before, measured := t.sample()
	start = time.Now()
	if err := r.joinAll(ctx, res); err != nil {
		return res, fmt.Errorf("bench: muc: %w", err)
	}
	res.JoinElapsed = Duration(time.Since(start))
	if after, ok := t.sample(); ok && measured {
		res.Server = true
		res.KiBPerOccupant = float64(after.RSS-before.RSS) / 1024 / float64(o.Users)
	}
	for _, rate := range o.Rates {
		st := r.step(ctx, rate, closed)
		res.Steps = append(res.Steps, st)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("bench: muc: %w", err)
		}
		if len(closed) > 0 {
			return res, fmt.Errorf("bench: muc: %w", errClosed)
		}
	}
	return res, nil
}

// roomJID is the address of room k.
func (r *mucRun) roomJID(k int) string {
	return "bench" + strconv.Itoa(k) + "@" + r.o.Service
}

// joinAll makes every user an occupant of its room: the first of each
// room creates it (an instant room, XEP-0045 §10.1.2), the others join
// one after the other within a room and rooms in parallel.
func (r *mucRun) joinAll(ctx context.Context, res *MUCResult) error {
	var mu sync.Mutex
	var first error
	each(r.o.Rooms, r.o.Concurrency, func(k int) {
		for _, u := range r.members[k] {
			mu.Lock()
			failed := first != nil
			mu.Unlock()
			if failed {
				return
			}
			d, err := r.join(ctx, k, u)
			mu.Lock()
			if err != nil && first == nil {
				first = err
			}
			res.LastJoin = max(res.LastJoin, Duration(d))
			mu.Unlock()
		}
	})
	return first
}

// join sends user u's presence to room k and waits for its own
// presence (status 110), configuring the room as instant when it was
// created (201); it returns how long the entry took.
func (r *mucRun) join(ctx context.Context, k, u int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	c := r.clients[u]
	room := r.roomJID(k)
	self := room + "/u" + strconv.Itoa(u)
	t0 := time.Now()
	err := c.SendRaw([]byte("<presence to='" + self + "'><x xmlns='" + nsMUC + "'><history maxstanzas='0'/></x></presence>"))
	if err != nil {
		return 0, err
	}
	var res joinResult
	select {
	case res = <-r.joined[u]:
	case <-ctx.Done():
		return 0, fmt.Errorf("join %s: no self-presence: %w", self, ctx.Err())
	}
	if res.err != nil {
		return 0, fmt.Errorf("join %s: %w", self, res.err)
	}
	d := time.Since(t0)
	if res.created {
		// A new locked room: accept the default configuration.
		iq := stanza.NewIQ(stanza.NSClient, stanza.IQSet, room, "", "").Append(
			xmlstream.NewElement(nsMUCOwner, "query").Append(
				xmlstream.NewElement("jabber:x:data", "x").SetAttr("type", "submit")))
		if _, err := c.IQ(ctx, iq); err != nil {
			return 0, fmt.Errorf("configure %s as an instant room: %w", room, err)
		}
	}
	return d, nil
}

// joinResult is how an occupant's entry ended: its self-presence, in a
// room it created or not, or an error.
type joinResult struct {
	created bool
	err     error
}

func hasStatus(x *xmlstream.Element, code string) bool {
	for _, s := range x.ChildrenNS(nsMUCUser) {
		if s.Name.Local == "status" && s.Attribute("code") == code {
			return true
		}
	}
	return false
}

// step sends at rate for the step's duration, waits for the copies to
// arrive (or the drain time to pass) and summarises.
func (r *mucRun) step(ctx context.Context, rate float64, closed chan struct{}) MUCStep {
	s := &chatStep{}
	id := r.steps.add(s)

	meter := startUsage(r.t)
	start := time.Now()
	end := start.Add(r.o.Duration)
	var wg sync.WaitGroup
	var copies sync.Map // worker → copies expected
	n := min(workers, len(r.clients))
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			copies.Store(w, r.send(ctx, s, id, w, n, rate/float64(n), start, end))
		}()
	}
	wg.Wait()
	sentFor := time.Since(start)
	want := int64(0)
	copies.Range(func(_, v any) bool { want += v.(int64); return true })
	deadline := time.Now().Add(r.o.Drain)
	tick := time.NewTicker(10 * time.Millisecond)
	for s.received.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil && len(closed) == 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	tick.Stop()
	u := meter.stop()
	got := int(s.received.Load())
	st := MUCStep{
		Rate: rate, SentRate: float64(s.sent.Load()) / r.o.Duration.Seconds(), SendTime: Duration(sentFor),
		Sent: int(s.sent.Load()), Copies: int(want), Delivered: got, Lost: max(0, int(want)-got),
		CopyRate: float64(got) / r.o.Duration.Seconds(), Latency: s.lat.summary(), Usage: u,
	}
	if got > 0 {
		st.BenchCPUPerCopy = u.BenchCPU / Duration(got)
		if u.Server {
			st.ServerCPUPerCopy = u.ServerCPU / Duration(got)
		}
	}
	switch {
	case len(closed) > 0:
		st.Note = fmt.Sprintf("the server closed %d sessions", len(closed))
	case st.Lost > 0:
		st.Note = fmt.Sprintf("%d copies lost", st.Lost)
	case time.Duration(st.Latency.P99) > r.o.MaxP99:
		st.Note = "p99 over " + r.o.MaxP99.String()
	case sentFor > r.o.Duration+max(r.o.MaxP99, r.o.Duration/20):
		st.Note = "the generator fell behind"
	default:
		st.Pass = true
	}
	return st
}

// send is one sender worker: a Poisson stream of groupchat messages at
// rate from the users w, w+n, w+2n, … into their rooms, until end. It
// returns the copies its messages make.
func (r *mucRun) send(ctx context.Context, s *chatStep, step, w, n int, rate float64, start, end time.Time) int64 {
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)+1000))
	own := (len(r.clients) - w + n - 1) / n
	buf := make([]byte, 0, 256+r.o.BodyBytes)
	next := start
	var copies int64
	for seq := 0; ctx.Err() == nil; seq++ {
		next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
		if next.After(end) {
			break
		}
		if d := time.Until(next); d > 0 {
			wait(ctx, d)
		}
		from := w + n*rng.IntN(own)
		k := r.room[from]
		buf = append(buf[:0], r.to[k]...)
		buf = strconv.AppendInt(buf, int64(w), 10)
		buf = append(buf, '-')
		buf = strconv.AppendInt(buf, int64(seq), 10)
		buf = append(buf, "'><body>"...)
		body := len(buf)
		buf = append(buf, bodyPrefix...)
		buf = strconv.AppendInt(buf, int64(step), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, next.UnixNano(), 10)
		buf = append(buf, ' ')
		for len(buf)-body < r.o.BodyBytes {
			buf = append(buf, 'x')
		}
		buf = append(buf, "</body></message>"...)
		if err := r.clients[from].SendRaw(buf); err != nil {
			break
		}
		s.sent.Add(1)
		copies += int64(len(r.members[k]))
	}
	return copies
}

// receive reads c's stanzas until ctx ends, timing the bench messages'
// copies, and tells joined when the occupant's own presence (self)
// arrives; it reports false when the server ended the stream.
func (r *mucRun) receive(ctx context.Context, c *client.Client, self string, joined chan<- joinResult) bool {
	for {
		e, err := c.Recv(ctx)
		if err != nil {
			return ctx.Err() != nil
		}
		now := time.Now()
		if e.Name.Local == "presence" && e.Attribute("from") == self {
			var res joinResult
			x := e.Child(nsMUCUser, "x")
			if se, ok := stanza.ParseError(e); ok {
				res.err = se
			} else if x == nil || !hasStatus(x, "110") || e.Attribute("type") != "" {
				continue
			} else {
				res.created = hasStatus(x, "201")
			}
			select {
			case joined <- res:
			default:
			}
			continue
		}
		if e.Name.Local != "message" || e.Attribute("type") != "groupchat" {
			continue
		}
		r.steps.record(e, now)
	}
}
