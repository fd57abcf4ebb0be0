// Package xmlstream reads and writes XMPP's long-lived XML streams
// (RFC 6120 §4) as a sequence of element trees.
//
// A Reader parses the stream header with ReadStart and then each top-level
// element (stanzas, stream features, SASL and TLS negotiation elements)
// with Next, as a complete *Element with namespaces resolved. It is a
// hand-written streaming parser that enforces the restricted XML of
// RFC 6120 §11 (no comments, processing instructions, DTDs or entities
// beyond the predefined five), UTF-8 only, and the bounds of Limits, and
// reports violations as *Error values carrying the stream error condition
// to send. Reset supports stream restarts after STARTTLS and SASL, and
// Buffered detects data pipelined before a TLS handshake.
//
// A Writer writes the stream header, elements and end tag; Element.AppendXML
// serialises a single element.
package xmlstream
