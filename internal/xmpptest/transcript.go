package xmpptest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// RunTranscript plays the conversation in the file at path against srv,
// each actor on its own Raw stream, and fails the test at the first line
// whose expectation is not met, naming the file and line.
//
// A transcript is a text file (by convention testdata/*.xmpp), one step
// per line; blank lines and lines starting with '#' are ignored:
//
//	account alice wonderland      create alice@<domain> with that password
//	alice connects                dial (implicit on an actor's first step)
//	alice opens                   send a stream header, read the server's
//	                              (the features are for the next "receives")
//	alice starts tls              <starttls/>, expect <proceed/>, handshake
//	alice logs in                 on a new connection: open, STARTTLS,
//	                              SASL PLAIN, reopen: ready to bind
//	alice binds phone             bind resource "phone" (expect the result)
//	alice binds                   bind a resource the server chooses
//	alice sends: <presence/>      send the text as it is
//	alice receives: <presence/>   read one element and compare it
//	alice closes                  send </stream:stream>, await the server's
//	alice drops                   close the socket abruptly
//
// After "sends:" or "receives:" the XML may instead start on the next
// lines, each indented by spaces or tabs, until the next unindented line.
// An actor's steps after it closes or drops use a new connection.
//
// "receives:" parses the text as one element in a jabber:client stream
// with the stream prefix declared, and compares it with the element read
// as trees: names with their namespaces (so prefixes and where namespaces
// are declared do not matter), the set of attributes (not their order),
// and the children in order, ignoring whitespace-only text and trimming
// the rest. Special forms:
//
//	<stream:stream .../>    the server's stream header (its attributes)
//	</stream:stream>        the server's end of the stream
//	{any}                   in an attribute value or text: any characters
//	                        (ids, stream ids, generated resources)
//	{...}                   as a child: the received element may have other
//	                        children; the ones given must appear in order
//
// When an actor receives <proceed/> the runner does the TLS handshake, and
// when it receives SASL <success/> it restarts the stream, as a client
// does; "alice opens" then opens the new stream.
//
// In both directions these placeholders are replaced first:
//
//	{domain}                the server's domain
//	{alice}                 alice's bare JID
//	{alice.full}            the full JID alice bound last
//	{plain alice}           base64 SASL PLAIN response for alice's account
//	{plain bob secret}      the same for user bob and password secret
//	                        (bob need not be an account)
func RunTranscript(t testing.TB, srv *Server, path string) {
	t.Helper()
	steps, err := parseTranscript(path)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	p := &player{srv: srv, accounts: make(map[string]string), raws: make(map[string]*Raw), full: make(map[string]jid.JID)}
	p.t = &stepTB{TB: t, at: &p.at}
	for _, st := range steps {
		p.at = fmt.Sprintf("%s:%d: %s %s", path, st.line, st.actor, st.verb)
		t.Logf("%s:%d: %s %s %s", path, st.line, st.actor, st.verb, st.arg)
		p.play(st)
	}
}

// RunTranscripts runs every transcript matching pattern (such as
// "testdata/*.xmpp") as a parallel subtest named after its file, each
// against a new server started with edit.
func RunTranscripts(t *testing.T, pattern string, edit func(*config.Config)) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("xmpptest: no transcripts match %s (%v)", pattern, err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)), func(t *testing.T) {
			t.Parallel()
			RunTranscript(t, Start(t, edit), f)
		})
	}
}

// step is one line (or block) of a transcript.
type step struct {
	line  int
	actor string // or "account"
	verb  string // "sends", "logs in", ...
	arg   string // the XML, resource or password
}

var (
	actorRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	argVerbs  = map[string]bool{"binds": true}
	bareVerbs = map[string]bool{"connects": true, "opens": true, "starts tls": true, "logs in": true, "binds": true, "closes": true, "drops": true}
)

// parseTranscript reads and checks the syntax of a transcript.
func parseTranscript(path string) ([]step, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps []step
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	var block *step // the step whose XML continues on indented lines
	for sc.Scan() {
		n++
		line := sc.Text()
		if block != nil && line != "" && (line[0] == ' ' || line[0] == '\t') {
			block.arg += line + "\n"
			continue
		}
		if block != nil && strings.TrimSpace(line) == "" {
			block.arg += "\n"
			continue
		}
		block = nil
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		st, err := parseStep(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		st.line = n
		steps = append(steps, st)
		if (st.verb == "sends" || st.verb == "receives") && st.arg == "" {
			block = &steps[len(steps)-1]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for _, st := range steps {
		if (st.verb == "sends" || st.verb == "receives") && strings.TrimSpace(st.arg) == "" {
			return nil, fmt.Errorf("%s:%d: %s %s: no XML", path, st.line, st.actor, st.verb)
		}
	}
	return steps, nil
}

func parseStep(line string) (step, error) {
	actor, rest, _ := strings.Cut(line, " ")
	if actor == "account" {
		f := strings.Fields(rest)
		if len(f) != 2 || !actorRE.MatchString(f[0]) {
			return step{}, errors.New("want: account NAME PASSWORD")
		}
		return step{actor: f[0], verb: "account", arg: f[1]}, nil
	}
	if !actorRE.MatchString(actor) {
		return step{}, fmt.Errorf("bad actor name %q", actor)
	}
	for _, v := range []string{"sends", "receives"} {
		if x, ok := strings.CutPrefix(rest, v+":"); ok {
			return step{actor: actor, verb: v, arg: strings.TrimSpace(x)}, nil
		}
	}
	verb := strings.Join(strings.Fields(rest), " ")
	if bareVerbs[verb] {
		return step{actor: actor, verb: verb}, nil
	}
	for v := range argVerbs {
		if x, ok := strings.CutPrefix(verb, v+" "); ok && !strings.Contains(x, " ") {
			return step{actor: actor, verb: v, arg: x}, nil
		}
	}
	return step{}, fmt.Errorf("unknown step %q", rest)
}

// player runs a transcript's steps.
type player struct {
	t        *stepTB
	at       string // the current step, for failures
	srv      *Server
	accounts map[string]string // name → password
	raws     map[string]*Raw
	full     map[string]jid.JID // name → full JID bound last
}

// stepTB prefixes failures, including those of Raw's methods, with the
// transcript's current step.
type stepTB struct {
	testing.TB
	at *string
}

func (t *stepTB) Fatalf(format string, args ...any) {
	t.TB.Helper()
	t.TB.Fatalf("%s: %s", *t.at, fmt.Sprintf(format, args...))
}

func (t *stepTB) Fatal(args ...any) {
	t.TB.Helper()
	t.TB.Fatalf("%s: %s", *t.at, fmt.Sprint(args...))
}

func (t *stepTB) Errorf(format string, args ...any) {
	t.TB.Helper()
	t.TB.Errorf("%s: %s", *t.at, fmt.Sprintf(format, args...))
}

func (t *stepTB) Error(args ...any) {
	t.TB.Helper()
	t.TB.Errorf("%s: %s", *t.at, fmt.Sprint(args...))
}

func (p *player) raw(actor string) *Raw {
	r := p.raws[actor]
	if r == nil {
		r = p.srv.DialRaw(p.t)
		p.raws[actor] = r
	}
	return r
}

func (p *player) password(actor string) string {
	pw, ok := p.accounts[actor]
	if !ok {
		p.t.Fatalf("no account %s (add: account %s PASSWORD)", actor, actor)
	}
	return pw
}

func (p *player) play(st step) {
	t := p.t
	t.Helper()
	switch st.verb {
	case "account":
		if _, ok := p.accounts[st.actor]; ok {
			t.Fatalf("account %s twice", st.actor)
		}
		p.srv.AddUser(t, st.actor, st.arg)
		p.accounts[st.actor] = st.arg
	case "connects":
		p.raw(st.actor)
	case "opens":
		r := p.raw(st.actor)
		r.Header(p.srv.Domain)
		r.ReadHeader()
	case "starts tls":
		r := p.raw(st.actor)
		r.Send(`<starttls xmlns='` + stream.NSTLS + `'/>`)
		r.Expect(stream.NSTLS, "proceed")
		r.TLSHandshake()
	case "logs in":
		p.raw(st.actor).Login(st.actor, p.password(st.actor))
	case "binds":
		p.full[st.actor] = p.raw(st.actor).Bind(st.arg)
	case "closes":
		p.raw(st.actor).Close()
		delete(p.raws, st.actor)
	case "drops":
		p.raw(st.actor).Drop()
		delete(p.raws, st.actor)
	case "sends":
		text, err := p.expand(st.arg, false)
		if err != nil {
			t.Fatalf("%v", err)
		}
		p.raw(st.actor).Send(text)
	case "receives":
		p.receive(st)
	}
}

// receive reads one element (or the header, or the end) and compares it
// with the step's.
func (p *player) receive(st step) {
	t := p.t
	t.Helper()
	r := p.raw(st.actor)
	text, err := p.expand(st.arg, true)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if strings.TrimSpace(text) == "</stream:stream>" {
		r.ExpectEnd()
		return
	}
	want, err := parseExpected(text)
	if err != nil {
		t.Fatalf("bad XML: %v", err)
	}
	var got *xmlstream.Element
	if want.Name == (xmlstream.Name{Space: stream.NS, Local: "stream"}) {
		got = r.ReadHeader()
	} else {
		e, err := r.NextErr()
		if err != nil {
			t.Fatalf("want %s, got %v", want, err)
		}
		got = e
	}
	if err := match(want, got); err != nil {
		t.Fatalf("%v\n\twant: %s\n\tgot:  %s", err, want, got)
	}
	switch got.Name {
	case xmlstream.Name{Space: stream.NSTLS, Local: "proceed"}:
		r.TLSHandshake()
	case xmlstream.Name{Space: stream.NSSASL, Local: "success"}:
		r.Restart()
	}
}

var placeholderRE = regexp.MustCompile(`\{([^{}]*)\}`)

// expand replaces the placeholders in text; {any} and {...} are kept for
// a received element and refused in a sent one.
func (p *player) expand(text string, receiving bool) (string, error) {
	var bad error
	out := placeholderRE.ReplaceAllStringFunc(text, func(m string) string {
		inner := m[1 : len(m)-1]
		f := strings.Fields(inner)
		switch {
		case inner == "any" || inner == "...":
			if !receiving {
				bad = fmt.Errorf("%s is only for received elements", m)
			}
			return m
		case inner == "domain":
			return p.srv.Domain
		case len(f) >= 2 && len(f) <= 3 && f[0] == "plain":
			if len(f) == 3 {
				return Plain(f[1], f[2])
			}
			pw, ok := p.accounts[f[1]]
			if !ok {
				bad = fmt.Errorf("%s: no account %s", m, f[1])
				return m
			}
			return Plain(f[1], pw)
		case actorRE.MatchString(inner):
			if _, ok := p.accounts[inner]; !ok {
				bad = fmt.Errorf("%s: no account %s", m, inner)
				return m
			}
			return inner + "@" + p.srv.Domain
		}
		if name, ok := strings.CutSuffix(inner, ".full"); ok && actorRE.MatchString(name) {
			j, ok := p.full[name]
			if !ok {
				bad = fmt.Errorf("%s: %s has not bound a resource", m, name)
				return m
			}
			return j.String()
		}
		bad = fmt.Errorf("unknown placeholder %s", m)
		return m
	})
	return out, bad
}

// parseExpected parses text as one element of a jabber:client stream.
func parseExpected(text string) (*xmlstream.Element, error) {
	r := xmlstream.NewReader(strings.NewReader(`<stream:stream xmlns='jabber:client' xmlns:stream='`+stream.NS+`'>`+text), xmlstream.Limits{MaxElementBytes: 1 << 20})
	if _, err := r.ReadStart(); err != nil {
		return nil, err
	}
	e, err := r.Next()
	if err != nil {
		return nil, err
	}
	if extra, err := r.Next(); err != io.EOF {
		if err == nil {
			return nil, fmt.Errorf("more than one element (then %s)", extra)
		}
		return nil, err
	}
	return e, nil
}
