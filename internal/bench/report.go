package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of one ode bench run, as written in JSON.
type Report struct {
	// Scenario is "login", "chat", "idle" or "muc".
	Scenario string `json:"scenario"`
	// Addr, TLS ("starttls" or "direct") and Mechanism describe the target.
	Addr      string `json:"addr"`
	TLS       string `json:"tls"`
	Mechanism string `json:"mechanism,omitempty"`
	// PID is the server process measured (0: none).
	PID int `json:"server_pid,omitempty"`
	// Started is when the run began.
	Started time.Time `json:"started"`
	// GOMAXPROCS and CPUs describe the generator's machine.
	GOMAXPROCS int `json:"gomaxprocs"`
	CPUs       int `json:"cpus"`
	// Register is what in-band registration did, when it ran.
	Register *RegisterResult `json:"register,omitempty"`
	// One of Login, Chat, Idle and MUC is set.
	Login *LoginResult `json:"login,omitempty"`
	Chat  *ChatResult  `json:"chat,omitempty"`
	Idle  *IdleResult  `json:"idle,omitempty"`
	MUC   *MUCResult   `json:"muc,omitempty"`
	// BenchCPU is the generator's CPU time for the whole run, Wall its
	// wall time.
	BenchCPU Duration `json:"bench_cpu_ms"`
	Wall     Duration `json:"wall_ms"`
	// Error is why the run stopped early, if it did.
	Error string `json:"error,omitempty"`
}

func newReport(scenario string, t Target) *Report {
	tlsMode := "starttls"
	if t.DirectTLS {
		tlsMode = "direct"
	}
	return &Report{Scenario: scenario, Addr: t.Addr, TLS: tlsMode, Mechanism: t.Mechanism, PID: t.PID,
		Started: time.Now(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUs: runtime.NumCPU()}
}

// WriteTable writes the report as aligned text.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	var footer []string
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(&b, "ode bench %s: %s (%s", r.Scenario, r.Addr, r.TLS)
	if r.Mechanism != "" {
		fmt.Fprintf(&b, ", %s", r.Mechanism)
	}
	if r.PID != 0 {
		fmt.Fprintf(&b, ", server pid %d", r.PID)
	} else {
		b.WriteString(", server not measured")
	}
	b.WriteString(")\n")
	if g := r.Register; g != nil {
		fmt.Fprintf(&b, "registered %d accounts (%d existed) in %s\n", g.Created, g.Existed, Duration(g.Elapsed))
	}
	switch {
	case r.Login != nil:
		l := r.Login
		fmt.Fprintln(tw, "logins\tfailed\tlogins/s\tp50\tp90\tp99\tmax\tserver CPU/login\tbench CPU/login\t")
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.OK, l.Failed, l.PerSecond,
			l.Latency.P50, l.Latency.P90, l.Latency.P99, l.Latency.Max,
			orDash(l.Usage.Server, l.ServerCPUPerLogin), per(l.Usage.BenchCPU, l.OK))
		if l.Options.TLSResume {
			footer = append(footer, fmt.Sprintf("%d of %d logins resumed their TLS session", l.Resumed, l.OK))
		}
		if l.FirstError != "" {
			footer = append(footer, "first error: "+l.FirstError)
		}
	case r.Chat != nil:
		c := r.Chat
		fmt.Fprintf(&b, "%d users online in %s\n", c.Options.Users, c.LoginElapsed)
		fmt.Fprintln(tw, "rate\tsent/s\tdelivered/s\tlost\tp50\tp90\tp99\tmax\tserver CPU/msg\tbench CPU/msg\tpass\t")
		for _, s := range c.Steps {
			pass := "yes"
			if !s.Pass {
				pass = "no: " + s.Note
			}
			fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Rate, s.SentRate, s.DeliveredRate, s.Lost,
				s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.Max,
				orDash(s.Usage.Server, s.ServerCPUPerMessage), s.BenchCPUPerMessage, pass)
		}
		if c.Options.Search {
			footer = append(footer, fmt.Sprintf("capacity: %.0f msgs/s with p99 under %s and nothing lost", c.Capacity, c.Options.MaxP99))
		}
	case r.MUC != nil:
		m := r.MUC
		fmt.Fprintf(&b, "%d users online in %s; %d rooms of %s joined in %s (longest join %s)", m.Options.Users, m.LoginElapsed,
			m.Options.Rooms, m.Options.Service, m.JoinElapsed, m.LastJoin)
		if m.Server {
			fmt.Fprintf(&b, ", server RSS %.1f KiB/occupant", m.KiBPerOccupant)
		}
		b.WriteString("\n")
		fmt.Fprintln(tw, "rate\tsent/s\tcopies/s\tlost\tp50\tp90\tp99\tmax\tserver CPU/copy\tbench CPU/copy\tpass\t")
		for _, s := range m.Steps {
			pass := "yes"
			if !s.Pass {
				pass = "no: " + s.Note
			}
			fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Rate, s.SentRate, s.CopyRate, s.Lost,
				s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.Max,
				orDash(s.Usage.Server, s.ServerCPUPerCopy), s.BenchCPUPerCopy, pass)
		}
	case r.Idle != nil:
		i := r.Idle
		fmt.Fprintln(tw, "sessions\tlogin time\tRSS before\tRSS after\tKiB/session\t")
		if i.Server {
			fmt.Fprintf(tw, "%d\t%s\t%.1f MiB\t%.1f MiB\t%.1f\t\n", i.Options.Sessions, i.LoginElapsed,
				float64(i.RSSBefore)/(1<<20), float64(i.RSSAfter)/(1<<20), i.KiBPerSession)
		} else {
			fmt.Fprintf(tw, "%d\t%s\t-\t-\t-\t\n", i.Options.Sessions, i.LoginElapsed)
		}
	}
	tw.Flush()
	for _, f := range footer {
		b.WriteString(f + "\n")
	}
	fmt.Fprintf(&b, "generator: %s CPU in %s wall (%.0f%% of one core)\n", r.BenchCPU, r.Wall,
		100*float64(r.BenchCPU)/max(1, float64(r.Wall)))
	if r.Error != "" {
		fmt.Fprintf(&b, "stopped: %s\n", r.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(ok bool, d Duration) string {
	if !ok {
		return "-"
	}
	return d.String()
}

func per(d Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return (d / Duration(n)).String()
}
