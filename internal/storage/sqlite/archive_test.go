package sqlite_test

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/storage/storagetest"
)

func TestArchive(t *testing.T) { storagetest.TestArchive(t, openTemp) }
