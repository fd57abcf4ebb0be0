package xmlstream

import (
	"strings"
)

// NSXML is the namespace bound to the reserved "xml" prefix (xml:lang).
const NSXML = "http://www.w3.org/XML/1998/namespace"

// NSXMLNS is the namespace of namespace declarations themselves.
const NSXMLNS = "http://www.w3.org/2000/xmlns/"

// Name is a namespace-qualified XML name: Space is the namespace URI (not
// the prefix) and Local the local part.
type Name struct {
	Space string
	Local string
}

// Attr is one attribute of an element. Name.Space is empty for an
// unprefixed attribute (attributes do not take the default namespace) and
// NSXML for xml:lang. Namespace declarations (xmlns, xmlns:p) are not kept
// as attributes: the tree holds resolved names and the writer declares what
// it needs.
type Attr struct {
	Name  Name
	Value string
}

// Child is one child node of an element: an element when Elem is not nil,
// otherwise character data (already unescaped).
type Child struct {
	Elem *Element
	Text string
}

// Element is an XML element with its attributes and children, with every
// name resolved to its namespace URI.
type Element struct {
	Name     Name
	Attr     []Attr
	Children []Child
}

// NewElement returns an element with the given namespace and local name.
func NewElement(space, local string) *Element {
	return &Element{Name: Name{Space: space, Local: local}}
}

// Attribute returns the value of the unprefixed attribute local, or "".
func (e *Element) Attribute(local string) string {
	v, _ := e.LookupAttr("", local)
	return v
}

// LookupAttr returns the value of the attribute {space}local and whether it
// is present.
func (e *Element) LookupAttr(space, local string) (string, bool) {
	for i := range e.Attr {
		a := &e.Attr[i]
		if a.Name.Local == local && a.Name.Space == space {
			return a.Value, true
		}
	}
	return "", false
}

// Lang returns the element's own xml:lang attribute, or "".
func (e *Element) Lang() string {
	v, _ := e.LookupAttr(NSXML, "lang")
	return v
}

// SetAttr sets the unprefixed attribute local to value, replacing any
// previous value, and returns e for chaining.
func (e *Element) SetAttr(local, value string) *Element {
	return e.SetAttrNS("", local, value)
}

// SetAttrNS sets the attribute {space}local to value, replacing any
// previous value, and returns e for chaining.
func (e *Element) SetAttrNS(space, local, value string) *Element {
	for i := range e.Attr {
		if e.Attr[i].Name.Local == local && e.Attr[i].Name.Space == space {
			e.Attr[i].Value = value
			return e
		}
	}
	e.Attr = append(e.Attr, Attr{Name: Name{Space: space, Local: local}, Value: value})
	return e
}

// RemoveAttr removes the unprefixed attribute local if present.
func (e *Element) RemoveAttr(local string) {
	for i := range e.Attr {
		if e.Attr[i].Name.Local == local && e.Attr[i].Name.Space == "" {
			e.Attr = append(e.Attr[:i], e.Attr[i+1:]...)
			return
		}
	}
}

// Append adds child elements at the end and returns e for chaining.
func (e *Element) Append(children ...*Element) *Element {
	for _, c := range children {
		e.Children = append(e.Children, Child{Elem: c})
	}
	return e
}

// AppendText adds character data at the end and returns e for chaining.
func (e *Element) AppendText(text string) *Element {
	if text != "" {
		e.Children = append(e.Children, Child{Text: text})
	}
	return e
}

// Text returns the concatenated character data directly inside e (not of
// its descendants).
func (e *Element) Text() string {
	var only string
	n := 0
	for _, c := range e.Children {
		if c.Elem == nil {
			only = c.Text
			n++
		}
	}
	if n <= 1 {
		return only
	}
	var b strings.Builder
	for _, c := range e.Children {
		if c.Elem == nil {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// Child returns the first child element named {space}local, or nil.
// An empty space matches any namespace.
func (e *Element) Child(space, local string) *Element {
	for _, c := range e.Children {
		if c.Elem != nil && c.Elem.Name.Local == local && (space == "" || c.Elem.Name.Space == space) {
			return c.Elem
		}
	}
	return nil
}

// ChildrenNS returns the child elements in namespace space (all child
// elements when space is "").
func (e *Element) ChildrenNS(space string) []*Element {
	var out []*Element
	for _, c := range e.Children {
		if c.Elem != nil && (space == "" || c.Elem.Name.Space == space) {
			out = append(out, c.Elem)
		}
	}
	return out
}

// FirstChild returns the first child element, or nil.
func (e *Element) FirstChild() *Element {
	for _, c := range e.Children {
		if c.Elem != nil {
			return c.Elem
		}
	}
	return nil
}

// Copy returns a deep copy of e.
func (e *Element) Copy() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Name: e.Name}
	if len(e.Attr) > 0 {
		c.Attr = append([]Attr(nil), e.Attr...)
	}
	if len(e.Children) > 0 {
		c.Children = make([]Child, len(e.Children))
		for i, ch := range e.Children {
			if ch.Elem != nil {
				c.Children[i] = Child{Elem: ch.Elem.Copy()}
			} else {
				c.Children[i] = ch
			}
		}
	}
	return c
}

// String serialises e as a standalone fragment (its namespace declared).
func (e *Element) String() string {
	return string(e.AppendXML(nil, ""))
}
