package sqlite_test

import (
	"bytes"
	"cmp"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/bench"
)

// BenchmarkArchiveLayout compares, on raw SQL outside the store, the
// write cost per local-to-local message of two archive layouts under the
// traffic of BenchmarkAppendArchive (1,000 accounts, random pairs,
// transactions of 8,192 messages, the per-account rows of each sorted by
// account and id as AppendArchive sorts them):
//   - rows: today's (migration 0010), a row per account, each in
//     archive_by_id, archive_by_with and archive_by_time;
//   - shared: one row per message for both parties, an entry per party
//     in a WITHOUT ROWID (account_id, id) table, one conversation index
//     entry per message keyed by the pair of parties, no time index (the
//     retention sweep would go by rowid);
//   - shared-int: the same with the conversation keyed by an integer (the
//     two account ids) instead of the two JIDs' text;
//   - shared-int-blob: shared-int with 16-byte binary ids instead of 26
//     characters of text;
//   - chunks: the rows of one account in one transaction encoded together
//     (length-prefixed fields) into one row, a chunk, found by its
//     account and last id and by its newest stamp, with an entry per
//     conversation partner per chunk in a WITHOUT ROWID (account_id,
//     with_jid, last_id) table for 'with' queries;
//   - chunks-meta: the chunk's data in a rowid table of its own and its
//     description (ids, stamps, count, a 256-bit Bloom filter of its
//     partners instead of the conversation entries) in a WITHOUT ROWID
//     table clustered on (account_id, last_id): a 'with' query would
//     scan the account's descriptions.
//
// It is the measurement behind docs/performance.md's evaluation of a
// shared-row archive; the store does not use the shared layouts.
func BenchmarkArchiveLayout(b *testing.B) {
	for _, layout := range []string{"rows", "shared", "shared-int", "shared-int-blob", "chunks", "chunks-meta"} {
		b.Run("layout="+layout, func(b *testing.B) { benchmarkArchiveLayout(b, layout) })
	}
}

var layoutSchemas = map[string]string{
	"rows": `
CREATE TABLE archive (
	account_id INTEGER NOT NULL, id TEXT NOT NULL, with_jid TEXT NOT NULL, with_resource TEXT NOT NULL,
	stamp INTEGER NOT NULL, outgoing INTEGER NOT NULL, stanza BLOB NOT NULL) STRICT;
CREATE UNIQUE INDEX archive_by_id ON archive (account_id, id);
CREATE INDEX archive_by_with ON archive (account_id, with_jid, id);
CREATE INDEX archive_by_time ON archive (stamp);`,
	"shared": `
CREATE TABLE message (
	id TEXT NOT NULL, conversation TEXT NOT NULL, sender INTEGER NOT NULL, sender_resource TEXT NOT NULL,
	recipient INTEGER NOT NULL, recipient_resource TEXT NOT NULL, stamp INTEGER NOT NULL, stanza BLOB NOT NULL) STRICT;
CREATE INDEX message_by_conversation ON message (conversation, id);
CREATE TABLE entry (account_id INTEGER NOT NULL, id TEXT NOT NULL, message INTEGER NOT NULL,
	PRIMARY KEY (account_id, id)) STRICT, WITHOUT ROWID;`,
	"chunks": `
CREATE TABLE chunk (
	account_id INTEGER NOT NULL, first_id TEXT NOT NULL, last_id TEXT NOT NULL,
	min_stamp INTEGER NOT NULL, max_stamp INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL) STRICT;
CREATE UNIQUE INDEX chunk_by_id ON chunk (account_id, last_id);
CREATE INDEX chunk_by_time ON chunk (max_stamp);
CREATE TABLE chunk_with (account_id INTEGER NOT NULL, with_jid TEXT NOT NULL, last_id TEXT NOT NULL,
	PRIMARY KEY (account_id, with_jid, last_id)) STRICT, WITHOUT ROWID;`,
	"chunks-meta": `
CREATE TABLE chunk_data (data BLOB NOT NULL) STRICT;
CREATE TABLE chunk (
	account_id INTEGER NOT NULL, last_id TEXT NOT NULL, first_id TEXT NOT NULL,
	min_stamp INTEGER NOT NULL, max_stamp INTEGER NOT NULL, n INTEGER NOT NULL, withs BLOB NOT NULL, data INTEGER NOT NULL,
	PRIMARY KEY (account_id, last_id)) STRICT, WITHOUT ROWID;
CREATE INDEX chunk_by_time ON chunk (max_stamp);`,
	"shared-int-blob": `
CREATE TABLE message (
	id BLOB NOT NULL, conversation INTEGER NOT NULL, sender INTEGER NOT NULL, sender_resource TEXT NOT NULL,
	recipient INTEGER NOT NULL, recipient_resource TEXT NOT NULL, stamp INTEGER NOT NULL, stanza BLOB NOT NULL) STRICT;
CREATE INDEX message_by_conversation ON message (conversation, id);
CREATE TABLE entry (account_id INTEGER NOT NULL, id BLOB NOT NULL, message INTEGER NOT NULL,
	PRIMARY KEY (account_id, id)) STRICT, WITHOUT ROWID;`,
	"shared-int": `
CREATE TABLE message (
	id TEXT NOT NULL, conversation INTEGER NOT NULL, sender INTEGER NOT NULL, sender_resource TEXT NOT NULL,
	recipient INTEGER NOT NULL, recipient_resource TEXT NOT NULL, stamp INTEGER NOT NULL, stanza BLOB NOT NULL) STRICT;
CREATE INDEX message_by_conversation ON message (conversation, id);
CREATE TABLE entry (account_id INTEGER NOT NULL, id TEXT NOT NULL, message INTEGER NOT NULL,
	PRIMARY KEY (account_id, id)) STRICT, WITHOUT ROWID;`,
}

// multiInsert accumulates the rows of one table and inserts them k at a
// time with one prepared statement.
type multiInsert struct {
	st   *sql.Stmt
	k, n int
	args []any
}

func newMultiInsert(b *testing.B, tx *sql.Tx, table string, cols, k int) *multiInsert {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	st, err := tx.Prepare(`INSERT INTO ` + table + ` VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", k), ", "))
	if err != nil {
		b.Fatal(err)
	}
	return &multiInsert{st: st, k: k}
}

func (m *multiInsert) add(b *testing.B, tx *sql.Tx, args ...any) {
	m.args = append(m.args, args...)
	if m.n++; m.n == m.k {
		if _, err := m.st.Exec(m.args...); err != nil {
			b.Fatal(err)
		}
		m.args, m.n = m.args[:0], 0
	}
}

func (m *multiInsert) flush(b *testing.B, tx *sql.Tx, table string, cols int) {
	if m.n > 0 {
		rest := newMultiInsert(b, tx, table, cols, m.n)
		if _, err := rest.st.Exec(m.args...); err != nil {
			b.Fatal(err)
		}
		rest.st.Close()
	}
	m.st.Close()
}

// compareID orders two ids of BenchmarkArchiveLayout (strings, or
// []byte for shared-int-blob).
func compareID(x, y any) int {
	if a, ok := x.([]byte); ok {
		return bytes.Compare(a, y.([]byte))
	}
	return strings.Compare(x.(string), y.(string))
}

func benchmarkArchiveLayout(b *testing.B, layout string) {
	path := filepath.Join(b.TempDir(), "ode.db")
	params := url.Values{
		"_journal_mode": {"WAL"}, "_synchronous": {"FULL"},
		"_pragma": {"cache_size(-65536)", "temp_store(memory)"},
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}).String())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(layoutSchemas[layout]); err != nil {
		b.Fatal(err)
	}
	const accounts, batch, k = 1000, 8192, 64
	start := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var tx *sql.Tx
	var ins []*multiInsert
	tables := map[string][]struct {
		name string
		cols int
	}{
		"rows":            {{"archive", 7}},
		"shared":          {{"message", 8}, {"entry", 3}},
		"shared-int":      {{"message", 8}, {"entry", 3}},
		"shared-int-blob": {{"message", 8}, {"entry", 3}},
		"chunks":          {{"chunk", 7}, {"chunk_with", 3}},
		"chunks-meta":     {{"chunk_data", 1}, {"chunk", 8}},
	}[layout]
	begin := func() {
		if tx, err = db.Begin(); err != nil {
			b.Fatal(err)
		}
		ins = ins[:0]
		for _, t := range tables {
			ins = append(ins, newMultiInsert(b, tx, t.name, t.cols, k))
		}
	}
	// The rows of a transaction, per table; the per-account ones (the
	// first column an account id, the second an id) are sorted by
	// account and id before they are inserted, as AppendArchive does.
	pending := make([][][]any, len(tables))
	var rowid int64
	commit := func() {
		switch layout {
		case "chunks":
			chunks := chunkRows(pending[0])
			for i, c := range chunks {
				chunks[i] = c[:7] // without the Bloom filter
			}
			pending[0], pending[1] = chunks, chunkWith(pending[0])
		case "chunks-meta":
			chunks := chunkRows(pending[0])
			pending[0], pending[1] = pending[0][:0], pending[1][:0]
			for _, c := range chunks {
				rowid++
				pending[0] = append(pending[0], []any{c[6]})
				pending[1] = append(pending[1], []any{c[0], c[2], c[1], c[3], c[4], c[5], c[7], rowid})
			}
		}
		for i, t := range tables {
			if t.name != "message" && t.name != "chunk_data" {
				slices.SortStableFunc(pending[i], func(x, y []any) int {
					if c := cmp.Compare(x[0].(int), y[0].(int)); c != 0 {
						return c
					}
					return compareID(x[1], y[1])
				})
			}
			for _, r := range pending[i] {
				ins[i].add(b, tx, r...)
			}
			pending[i] = pending[i][:0]
			ins[i].flush(b, tx, t.name, t.cols)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := bench.SelfCPU()
	defer func() { reportCPU(b, cpu) }()
	begin()
	for i := range b.N {
		from := i % accounts
		to := int(uint32(i)*2654435761>>8) % accounts
		if to == from {
			to = (to + 1) % accounts
		}
		fromJID, toJID := fmt.Sprintf("u%d@example.org", from), fmt.Sprintf("u%d@example.org", to)
		var id any = fmt.Sprintf("%026d", i)
		if layout == "shared-int-blob" {
			id = binary.BigEndian.AppendUint64(make([]byte, 8, 16), uint64(i))
		}
		stamp := start + int64(i)
		stanza := fmt.Appendf(nil, `<message xmlns="jabber:client" from="%s/phone" to="%s/laptop" type="chat" id="a1b2c3d4-%d">`+
			`<body>Hello, how are you doing today? A typical chat line, message %d.</body></message>`, fromJID, toJID, i, i)
		switch layout {
		case "rows", "chunks", "chunks-meta":
			pending[0] = append(pending[0],
				[]any{from + 1, id, toJID, "laptop", stamp, 1, stanza},
				[]any{to + 1, id.(string) + "r", fromJID, "phone", stamp, 0, append(stanza[:len(stanza):len(stanza)], `<stanza-id/>`...)})
		default:
			var conv any = min(fromJID, toJID) + " " + max(fromJID, toJID)
			if layout != "shared" {
				conv = int64(min(from, to)+1)<<32 | int64(max(from, to)+1)
			}
			rowid++
			pending[0] = append(pending[0], []any{id, conv, from + 1, "phone", to + 1, "laptop", stamp, stanza})
			pending[1] = append(pending[1], []any{from + 1, id, rowid}, []any{to + 1, id, rowid})
		}
		if (i+1)%batch == 0 {
			commit()
			begin()
		}
	}
	commit()
}

// chunkRows turns the per-account rows of a transaction (account, id,
// with, resource, stamp, outgoing, stanza; sorted here by account and
// id) into one chunk per account: account, first id, last id, oldest
// and newest stamp, count, the rows length-prefixed in one blob, and a
// 256-bit Bloom filter of the partners.
func chunkRows(rows [][]any) [][]any {
	slices.SortStableFunc(rows, func(x, y []any) int {
		if c := cmp.Compare(x[0].(int), y[0].(int)); c != 0 {
			return c
		}
		return compareID(x[1], y[1])
	})
	var out [][]any
	for i := 0; i < len(rows); {
		j := i
		var data []byte
		var bloom [32]byte
		minStamp, maxStamp := rows[i][4].(int64), rows[i][4].(int64)
		for ; j < len(rows) && rows[j][0] == rows[i][0]; j++ {
			r := rows[j]
			for _, f := range []string{r[1].(string), r[2].(string), r[3].(string)} {
				data = binary.AppendUvarint(data, uint64(len(f)))
				data = append(data, f...)
			}
			data = binary.AppendVarint(data, r[4].(int64))
			data = append(data, byte(r[5].(int)))
			data = binary.AppendUvarint(data, uint64(len(r[6].([]byte))))
			data = append(data, r[6].([]byte)...)
			minStamp, maxStamp = min(minStamp, r[4].(int64)), max(maxStamp, r[4].(int64))
			h := fnv.New64a()
			h.Write([]byte(r[2].(string)))
			x := h.Sum64()
			for k := range 3 {
				bit := (x >> (16 * k)) & 255
				bloom[bit/8] |= 1 << (bit % 8)
			}
		}
		out = append(out, []any{rows[i][0], rows[i][1], rows[j-1][1], minStamp, maxStamp, j - i, data, bloom[:]})
		i = j
	}
	return out
}

// chunkWith returns the conversation entries of the chunks chunkRows
// made of rows: one per account, partner and chunk.
func chunkWith(rows [][]any) [][]any {
	var out [][]any
	for i := 0; i < len(rows); {
		j := i
		seen := map[string]bool{}
		for ; j < len(rows) && rows[j][0] == rows[i][0]; j++ {
			seen[rows[j][2].(string)] = true
		}
		for _, w := range slices.Sorted(maps.Keys(seen)) {
			out = append(out, []any{rows[i][0], w, rows[j-1][1]})
		}
		i = j
	}
	return out
}
