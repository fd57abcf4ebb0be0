// Package sasl implements the SASL mechanisms an XMPP server and client
// need (RFC 6120 §6): SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512 with
// their channel-binding -PLUS variants (RFC 5802, RFC 7677, RFC 5929,
// RFC 9266), PLAIN (RFC 4616) and EXTERNAL (RFC 4422 Appendix A); the
// Hashed Token mechanisms HT-SHA-256-NONE, -ENDP and -EXPR
// (draft-schmaus-kitten-sasl-ht) that XEP-0484 FAST uses to log in with a
// server-issued token; and XEP-0474 SCRAM downgrade protection (SSDP).
//
// The server side never sees or stores passwords: it works from SCRAM
// verifiers (Credential) that a CredentialLookup returns, and PLAIN is
// checked against the same verifiers. Passwords are prepared with the
// PRECIS OpaqueString profile (RFC 8265) and usernames with the
// UsernameCasePreserved profile, the PRECIS successors of SASLprep.
//
// Servers and clients are single-use state machines: create one per
// authentication exchange and do not share it between goroutines.
package sasl
