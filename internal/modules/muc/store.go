package muc

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// storedConfig is a room's configuration as the store keeps it (JSON).
type storedConfig struct {
	Name          string            `json:"name,omitempty"`
	Desc          string            `json:"desc,omitempty"`
	Public        bool              `json:"public"`
	MembersOnly   bool              `json:"members_only,omitempty"`
	Moderated     bool              `json:"moderated,omitempty"`
	Password      string            `json:"password,omitempty"`
	WhoisAnyone   bool              `json:"whois_anyone,omitempty"`
	MaxUsers      int               `json:"max_users,omitempty"`
	ChangeSubject bool              `json:"change_subject,omitempty"`
	AllowInvites  bool              `json:"allow_invites,omitempty"`
	AllowPM       string            `json:"allow_pm,omitempty"`
	NoArchive     bool              `json:"no_archive,omitempty"`
	HiddenRoles   []string          `json:"hidden_presence,omitempty"` // roles whose presence is not broadcast
	IDKey         []byte            `json:"occupant_id_key,omitempty"` // XEP-0421 ids stay the same across restarts
	Nicks         map[string]string `json:"nicks,omitempty"`           // reserved by registration
	VCard         []byte            `json:"vcard,omitempty"`           // the room's vCard, XML
	Hats          map[string][]Hat  `json:"hats,omitempty"`            // XEP-0317, by bare JID
}

func (c roomConfig) stored() storedConfig {
	return storedConfig{Name: c.name, Desc: c.desc, Public: c.public, MembersOnly: c.membersOnly, Moderated: c.moderated,
		Password: c.password, WhoisAnyone: c.whoisAnyone, MaxUsers: c.maxUsers, ChangeSubject: c.changeSubject,
		AllowInvites: c.allowInvites, AllowPM: c.allowPM, NoArchive: !c.archive, HiddenRoles: c.hidden}
}

func (s storedConfig) config() roomConfig {
	c := roomConfig{name: s.Name, desc: s.Desc, persistent: true, public: s.Public, membersOnly: s.MembersOnly,
		moderated: s.Moderated, password: s.Password, whoisAnyone: s.WhoisAnyone, maxUsers: s.MaxUsers,
		changeSubject: s.ChangeSubject, allowInvites: s.AllowInvites, allowPM: s.AllowPM, archive: !s.NoArchive}
	for _, r := range s.HiddenRoles {
		if r == roleModerator || r == roleParticipant || r == roleVisitor {
			c.hidden = append(c.hidden, r)
		}
	}
	switch c.allowPM {
	case "anyone", "participants", "moderators", "none":
	default:
		c.allowPM = "anyone"
	}
	return c
}

// storeTimeout bounds each write of a room to the store.
const storeTimeout = 10 * time.Second

// load reads the stored rooms of service into the module.
func (m *Module) load(service string) error {
	if m.deps.Store == nil {
		return nil // a server without storage (tests of the module table)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rooms, err := m.deps.Store.Rooms(ctx, service)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sr := range rooms {
		j, err := jid.Parse(sr.JID)
		if err != nil || j.Local() == "" {
			m.deps.Log.Warn("muc: stored room with a bad JID skipped", "room", sr.JID)
			continue
		}
		var sc storedConfig
		if err := json.Unmarshal(sr.Config, &sc); err != nil {
			m.deps.Log.Warn("muc: stored room with a bad configuration skipped", "room", sr.JID, "err", err)
			continue
		}
		var owners []string
		for k, a := range sr.Affiliations {
			if a == affOwner {
				owners = append(owners, k)
			}
		}
		slices.Sort(owners)
		var creator jid.JID
		if len(owners) > 0 {
			creator, _ = jid.Parse(owners[0])
		}
		rm := newRoom(m, j, creator, false)
		rm.fresh, rm.histLoaded = false, false
		rm.cfg = sc.config()
		if len(sc.IDKey) >= 16 {
			rm.idKey = sc.IDKey
		}
		for k, n := range sc.Nicks {
			rm.nicks[k] = n
		}
		for k, h := range sc.Hats {
			if len(h) > 0 {
				rm.hats[k] = h
			}
		}
		if sc.VCard != nil {
			if e, err := xmlstream.ParseElement(sc.VCard, stanza.NSClient); err == nil {
				rm.vcardXML, rm.avatarHash = e, avatarHash(e)
			}
		}
		rm.affs = make(map[string]string, len(sr.Affiliations))
		for k, a := range sr.Affiliations {
			rm.affs[k] = a
		}
		if sr.Subject != nil {
			if e, err := xmlstream.ParseElement(sr.Subject, stanza.NSClient); err == nil {
				rm.subject = e
			}
		}
		m.rooms[j.String()] = rm
		if !creator.IsZero() {
			m.owned[creator.String()]++
		}
	}
	if len(rooms) > 0 {
		m.deps.Log.Info("muc: rooms loaded", "service", service, "rooms", len(rooms))
	}
	return nil
}

// persist stores the room's configuration and subject, if it is
// persistent; rm.mu is held.
func (rm *room) persist(ctx context.Context) {
	if !rm.cfg.persistent {
		return
	}
	sc := rm.cfg.stored()
	sc.IDKey = rm.idKey
	if len(rm.nicks) > 0 {
		sc.Nicks = rm.nicks
	}
	if len(rm.hats) > 0 {
		sc.Hats = rm.hats
	}
	if rm.vcardXML != nil {
		sc.VCard = rm.vcardXML.AppendXML(nil, stanza.NSClient)
	}
	b, err := json.Marshal(sc)
	if err != nil {
		rm.mod().deps.Log.Error("muc: encode room configuration", "room", rm.jid.String(), "err", err)
		return
	}
	sr := storage.Room{JID: rm.jid.String(), Config: b, Created: rm.mod().now()}
	if rm.subject != nil {
		sr.Subject = rm.subject.AppendXML(nil, stanza.NSClient)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := rm.mod().deps.Store.PutRoom(ctx, sr); err != nil {
		rm.mod().deps.Log.Error("muc: store room", "room", rm.jid.String(), "err", err)
	}
}

// persistAffiliation stores one affiliation ("" or none: removed) of a
// persistent room; rm.mu is held.
func (rm *room) persistAffiliation(ctx context.Context, bare, aff string) {
	if !rm.cfg.persistent {
		return
	}
	if aff == affNone {
		aff = ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := rm.mod().deps.Store.SetRoomAffiliation(ctx, rm.jid.String(), bare, aff); err != nil {
		rm.mod().deps.Log.Error("muc: store affiliation", "room", rm.jid.String(), "jid", bare, "err", err)
	}
}

// persistAll stores a room that became persistent with its
// affiliations; rm.mu is held.
func (rm *room) persistAll(ctx context.Context) {
	rm.persist(ctx)
	for j, a := range rm.affs {
		rm.persistAffiliation(ctx, j, a)
	}
}

// unpersist removes the room from the store; rm.mu is held.
func (rm *room) unpersist(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := rm.mod().deps.Store.DeleteRoom(ctx, rm.jid.String()); err != nil {
		rm.mod().deps.Log.Error("muc: delete stored room", "room", rm.jid.String(), "err", err)
	}
}
