package admin

import (
	"fmt"
	"path/filepath"
	"strings"
)

// backupPath returns where a backup named name goes: name itself when
// remote paths are allowed and it is absolute, else name in o.BackupDir,
// where only a plain file name is accepted over HTTPS (a token must not
// let its holder write anywhere the server may).
func backupPath(name string, o Options) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", fmt.Errorf("%w: give the backup's path", ErrInvalid)
	}
	if o.RemotePaths && filepath.IsAbs(name) {
		return filepath.Clean(name), nil
	}
	if !o.RemotePaths && (strings.ContainsAny(name, `/\`) || name == "." || name == "..") {
		return "", fmt.Errorf("%w: over HTTPS a backup is a file name (no directory) in %s", ErrInvalid, o.BackupDir)
	}
	if o.BackupDir == "" {
		return "", fmt.Errorf("%w: relative backup path %q", ErrInvalid, name)
	}
	return filepath.Join(o.BackupDir, name), nil
}
