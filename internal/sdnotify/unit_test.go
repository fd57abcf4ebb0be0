package sdnotify_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	unitPath      = "../../docs/ode.service"
	operatingPath = "../../docs/operating.md"
)

// unit is a parsed systemd unit file: each section's assignments in
// order.
type unit map[string][][2]string

func (u unit) get(section, key string) []string {
	var out []string
	for _, kv := range u[section] {
		if kv[0] == key {
			out = append(out, kv[1])
		}
	}
	return out
}

// parseUnit reads the syntax of systemd.syntax(7): sections, key=value
// lines, comments.
func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if _, dup := u[section]; dup {
				t.Errorf("line %d: section [%s] twice", n, section)
			}
			u[section] = nil
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(k) == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("line %d: %q is not a key=value line in a section", n, line)
			}
			u[section] = append(u[section], [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return u
}

// TestUnitFile checks the example unit: what ode's readiness protocol
// needs, the hardening docs/operating.md promises, that the page shows
// the same file, and that systemd itself accepts it.
func TestUnitFile(t *testing.T) {
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	u := parseUnit(t, text)
	for _, s := range []string{"Unit", "Service", "Install"} {
		if _, ok := u[s]; !ok {
			t.Errorf("no [%s] section", s)
		}
	}
	for _, want := range [][3]string{
		{"Service", "Type", "notify"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "User", "ode"},
		{"Service", "StateDirectory", "ode"},
		{"Service", "WorkingDirectory", "/var/lib/ode"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "PrivateDevices", "yes"},
		{"Service", "CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
		{"Service", "AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
		{"Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
		{"Service", "SystemCallFilter", "@system-service"},
		{"Service", "MemoryDenyWriteExecute", "yes"},
		{"Service", "RestrictNamespaces", "yes"},
		{"Service", "LockPersonality", "yes"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.get(want[0], want[1]); !slices.Contains(got, want[2]) {
			t.Errorf("[%s] %s = %q, want %q among them", want[0], want[1], got, want[2])
		}
	}
	exec0 := u.get("Service", "ExecStart")
	if len(exec0) != 1 || !strings.HasPrefix(exec0[0], "/") || !strings.Contains(exec0[0], " serve ") {
		t.Errorf("ExecStart = %q, want one absolute command running ode serve", exec0)
	}
	if ws := u.get("Service", "WatchdogSec"); len(ws) != 1 {
		t.Errorf("WatchdogSec = %q: ode answers the watchdog (KeepAlive), the example should use it", ws)
	}

	page, err := os.ReadFile(operatingPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "```ini\n"+text+"```\n") {
		t.Errorf("%s does not show %s verbatim in an ini block: copy the file into the page", operatingPath, unitPath)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed to verify the unit: run test/interop/install-peers.sh (Debian package systemd): %v", err)
	}
	// verify wants the ExecStart binary to exist: this test's.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ode.service")
	if err := os.WriteFile(path, []byte(strings.Replace(text, strings.Fields(exec0[0])[0], self, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(t.Context(), analyze, "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	// "→ Overall exposure level for ode.service: 1.5 OK 🙂"
	const overall = "Overall exposure level for ode.service: "
	i := strings.Index(string(out), overall)
	if i < 0 {
		t.Fatalf("systemd-analyze security printed no overall level:\n%s", out)
	}
	level, err := strconv.ParseFloat(strings.Fields(string(out[i+len(overall):]))[0], 64)
	if err != nil {
		t.Fatalf("exposure level: %v\n%s", err, out)
	}
	if level > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0 (1.5 when written):\n%s", level, out)
	}
}
