package xmpptest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name      string
		want, got string
		ok        bool
	}{
		{"same", `<iq type='get' id='a'/>`, `<iq type='get' id='a'/>`, true},
		{"attribute order", `<iq type='get' id='a'/>`, `<iq id='a' type='get'/>`, true},
		{"prefix or default namespace", `<q:query xmlns:q='urn:x'><q:item/></q:query>`, `<query xmlns='urn:x'><item/></query>`, true},
		{"namespace declared on the parent", `<iq xmlns:b='urn:x'><b:bind/></iq>`, `<iq><bind xmlns='urn:x'/></iq>`, true},
		{"indentation", "<iq>\n\t<query xmlns='urn:x'>\n\t\t<item/>\n\t</query>\n</iq>", `<iq><query xmlns='urn:x'><item/></query></iq>`, true},
		{"any attribute", `<iq id='{any}'/>`, `<iq id='x7f'/>`, true},
		{"any part of a value", `<iq to='a@b/{any}'/>`, `<iq to='a@b/ode-1234'/>`, true},
		{"any part of a value, wrong prefix", `<iq to='a@b/{any}'/>`, `<iq to='c@b/ode-1234'/>`, false},
		{"any in text", `<jid xmlns='urn:x'>alice@localhost/{any}</jid>`, `<jid xmlns='urn:x'>alice@localhost/r1</jid>`, true},
		{"two anys", `<x xmlns='urn:x' v='{any}-{any}!'/>`, `<x xmlns='urn:x' v='a-b-c!'/>`, true},
		{"other value", `<iq type='get'/>`, `<iq type='set'/>`, false},
		{"missing attribute", `<iq type='get' id='a'/>`, `<iq type='get'/>`, false},
		{"extra attribute", `<iq type='get'/>`, `<iq type='get' id='a'/>`, false},
		{"xml:lang counts", `<message/>`, `<message xml:lang='en'/>`, false},
		{"other namespace", `<query xmlns='urn:x'/>`, `<query xmlns='urn:y'/>`, false},
		{"other name", `<message/>`, `<presence/>`, false},
		{"other text", `<body>hi</body>`, `<body>ho</body>`, false},
		{"extra child", `<iq><a/></iq>`, `<iq><a/><b/></iq>`, false},
		{"missing child", `<iq><a/><b/></iq>`, `<iq><a/></iq>`, false},
		{"children out of order", `<iq><a/><b/></iq>`, `<iq><b/><a/></iq>`, false},
		{"more admits extra children", `<iq><b/>{...}</iq>`, `<iq><a/><b/><c/></iq>`, true},
		{"more keeps the order", `<iq>{...}<b/><a/></iq>`, `<iq><a/><b/><c/></iq>`, false},
		{"more still needs the children", `<iq>{...}<d/></iq>`, `<iq><a/><b/></iq>`, false},
		{"more checks the child's content", `<iq>{...}<a x='1'/></iq>`, `<iq><a x='2'/></iq>`, false},
		{"more with nothing else", `<iq>{...}</iq>`, `<iq/>`, true},
		{"nested", `<m><b>{any}</b><x xmlns='urn:x'><y/></x></m>`, `<m><b>t</b><x xmlns='urn:x'><y/></x></m>`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := parseExpected(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseExpected(tt.got)
			if err != nil {
				t.Fatal(err)
			}
			err = match(want, got)
			if (err == nil) != tt.ok {
				t.Errorf("match(%s, %s) = %v, want ok=%v", tt.want, tt.got, err, tt.ok)
			}
		})
	}
}

func TestParseTranscriptErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"unknown step", "alice dances\n", "x.xmpp:1: unknown step"},
		{"bad actor", "Alice opens\n", `x.xmpp:1: bad actor name "Alice"`},
		{"account syntax", "account alice\n", "x.xmpp:1: want: account NAME PASSWORD"},
		{"empty block", "# c\nalice sends:\nalice opens\n", "x.xmpp:2: alice sends: no XML"},
		{"binds two words", "alice binds a b\n", "x.xmpp:1: unknown step"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.xmpp")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := parseTranscript(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parse: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseTranscriptBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.xmpp")
	text := "account alice pw\nalice sends:\n\t<iq>\n\n\t\t<a/>\n\t</iq>\nalice receives: <iq/>\nalice binds phone\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	steps, err := parseTranscript(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(steps))
	for i, st := range steps {
		got[i] = fmt.Sprintf("%d %s %s %q", st.line, st.actor, st.verb, st.arg)
	}
	want := []string{
		`1 alice account "pw"`,
		`2 alice sends "\t<iq>\n\n\t\t<a/>\n\t</iq>\n"`,
		`7 alice receives "<iq/>"`,
		`8 alice binds "phone"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// fatalRecorder keeps the first fatal message and ends the goroutine,
// as testing.T does, without failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// TestTranscriptFailures: a transcript that the server does not follow
// fails at its line, saying what differs.
func TestTranscriptFailures(t *testing.T) {
	srv := Start(t, nil)
	tests := []struct{ name, text, want string }{
		{"wrong value", "alice opens\nalice receives: <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>\n",
			"x.xmpp:2: alice receives: /features/starttls: got 1 children (<required/>), want 0 (none)"},
		{"wrong element", "account carol pw\ncarol logs in\ncarol sends: <iq type='get' id='p' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>\ncarol receives: <message/>\n",
			"x.xmpp:4: carol receives: /message: got element {jabber:client}iq, want {jabber:client}message"},
		{"placeholder in a sent element", "alice sends: <iq id='{any}'/>\n", "x.xmpp:1: alice sends: {any} is only for received elements"},
		{"unknown placeholder", "alice sends: <iq id='{nobody}'/>\n", "x.xmpp:1: alice sends: {nobody}: no account nobody"},
		{"full JID before bind", "account dave pw\ndave sends: <iq to='{dave.full}'/>\n", "x.xmpp:2: dave sends: {dave.full}: dave has not bound a resource"},
		{"login without account", "bob logs in\n", "x.xmpp:1: bob logs in: no account bob"},
		{"stream end expected", "alice opens\nalice receives: </stream:stream>\n", "x.xmpp:2: alice receives: xmpptest: want the stream's end, got <features"},
		// "opens" reads the header only: here the features are unread.
		{"Raw's own failure", "alice opens\nalice starts tls\n", "x.xmpp:2: alice starts tls: xmpptest: want {urn:ietf:params:xml:ns:xmpp-tls}proceed, got <features"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.xmpp")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			rec := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				RunTranscript(rec, srv, path)
			}()
			<-done
			if !strings.Contains(rec.msg, tt.want) {
				t.Fatalf("failure %q, want it to contain %q", rec.msg, tt.want)
			}
		})
	}
}
