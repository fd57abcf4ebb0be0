//go:build !linux

package sdnotify

// monotonicUsec reports false: only Linux has a systemd to tell.
func monotonicUsec() (uint64, bool) { return 0, false }
