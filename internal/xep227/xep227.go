// Package xep227 exports a store to, and imports it from, XEP-0227
// documents (Portable Import/Export Format for XMPP-IM Servers, version
// 1.1, namespace urn:xmpp:pie:0), so that accounts move between ode
// servers and from ejabberd or Prosody to ode.
//
// A document holds hosts (§4.1), each with its users (§4.2): the SCRAM
// verifiers of their passwords (§4.3, urn:xmpp:pie:0#scram; a plaintext
// 'password' attribute is hashed on import, never stored), the roster
// (§4.4, jabber:iq:roster), offline messages (§4.5), private XML (§4.6,
// jabber:iq:private), the vCard (§4.7, vcard-temp), privacy lists (§4.8:
// the jids a list denies become the block list), pending subscription
// requests (§4.9), PEP nodes with their configuration and items (§4.10;
// ode adds when each node was created and each item published, in
// urn:xmpp:ode:pie:0 attributes) and the message archive (§4.11,
// urn:xmpp:pie:0#mam). Files may be split with XInclude (§5): includes
// are followed where the XEP says an importer must (children of
// server-data, host and user; relative paths under the first file's
// directory only).
//
// What XEP-0227 does not define is written in ode's namespaces, which
// other servers ignore as the XEP asks: the block list (XEP-0191's
// <blocklist/>, as a child of <user/>) and multi-user chat rooms
// (<muc xmlns='urn:xmpp:ode:pie:muc:0' service='…'> children of
// <server-data/>; see docs/operating.md, "Moving to ode").
//
// Both directions stream: Export writes each user as it reads it, and
// Import reads the document token by token, holding at most one bounded
// element (a roster item, a message, a vCard) at a time, whatever the
// size of the file.
package xep227

import (
	"errors"
)

// Namespaces of the format.
const (
	// NS is XEP-0227's namespace.
	NS = "urn:xmpp:pie:0"
	// NSOld is the namespace of XEP-0227 before version 1.0, which older
	// ejabberd exports carry.
	NSOld = "http://www.xmpp.org/extensions/xep-0227.html#ns"
	// NSSCRAM qualifies <scram-credentials/> (§4.3).
	NSSCRAM = NS + "#scram"
	// NSMAM qualifies <archive/> (§4.11).
	NSMAM = NS + "#mam"
	// NSMUC qualifies ode's rooms, which XEP-0227 does not cover.
	NSMUC = "urn:xmpp:ode:pie:muc:0"
	// NSODE qualifies the attributes ode adds to XEP-0227's elements:
	// when a PEP node was created and an item published.
	NSODE = "urn:xmpp:ode:pie:0"
	// NSXInclude is XInclude's namespace (§5).
	NSXInclude = "http://www.w3.org/2001/XInclude"

	nsRoster    = "jabber:iq:roster"
	nsPrivate   = "jabber:iq:private"
	nsPrivacy   = "jabber:iq:privacy"
	nsVCard     = "vcard-temp"
	nsClient    = "jabber:client"
	nsBlocking  = "urn:xmpp:blocking"
	nsMAM       = "urn:xmpp:mam:2"
	nsForward   = "urn:xmpp:forward:0"
	nsDelay     = "urn:xmpp:delay"
	nsPubSub    = "http://jabber.org/protocol/pubsub"
	nsPubSubOwn = "http://jabber.org/protocol/pubsub#owner"
	nsMUCAdmin  = "http://jabber.org/protocol/muc#admin"
	nsData      = "jabber:x:data"
)

// Store keys of the documents the vcard and private modules keep.
const (
	vcardKey      = "vcard-temp"
	privatePrefix = "private:"
)

// stampLayout is how stamps are written: UTC, to the millisecond, as
// the store keeps them.
const stampLayout = "2006-01-02T15:04:05.000Z"

// ErrInput is wrapped by every error about the document itself (as
// opposed to the store): malformed XML, a missing attribute, a bound
// passed. Its message carries the file, line and column.
var ErrInput = errors.New("xep227: bad input")
