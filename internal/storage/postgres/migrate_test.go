package postgres

import (
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	if len(migrations) == 0 {
		t.Fatal("no embedded migrations")
	}
	for _, tt := range []struct {
		name  string
		files []string
		ok    bool
	}{
		{"in order", []string{"0001_a.sql", "0002_b.sql"}, true},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, false},
		{"duplicate", []string{"0001_a.sql", "0001_b.sql"}, false},
		{"no number", []string{"accounts.sql"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			if _, err := loadMigrations(fsys); (err == nil) != tt.ok {
				t.Errorf("loadMigrations(%v) = %v", tt.files, err)
			}
		})
	}
}
