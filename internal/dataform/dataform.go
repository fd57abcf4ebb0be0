// Package dataform reads and writes XEP-0004 data forms: the forms the
// server sends (configuration of a room or a node, the fields of a
// query, an ad-hoc command's step) and the ones clients submit.
//
// A Form is built field by field and turned into its <x
// xmlns='jabber:x:data'/> with Element; Parse reads a received <x/> into
// a Form, whose Value and Values give a field's values by var.
package dataform

import (
	"fmt"
	"strings"

	"github.com/ode-xmpp/ode/xmlstream"
)

// NS is the XEP-0004 namespace.
const NS = "jabber:x:data"

// Form types (XEP-0004 §3.1).
const (
	TypeForm   = "form"
	TypeSubmit = "submit"
	TypeCancel = "cancel"
	TypeResult = "result"
)

// Option is one choice of a list-single or list-multi field.
type Option struct {
	Value, Label string // Label "" for none
}

// Field is one field of a form (XEP-0004 §3.2).
type Field struct {
	Var, Type, Label string
	Required         bool
	Values           []string
	Options          []Option
}

// Form is a data form: its type, title, instructions, FORM_TYPE (the
// hidden field XEP-0068 names; not among Fields) and fields in order.
type Form struct {
	Type, Title, Instructions, FormType string
	Fields                              []Field
	// Extra are further children of <x/> written after the fields (the
	// roster items of XEP-0133's get-user-roster).
	Extra []*xmlstream.Element
}

// New returns a form of type typ (TypeForm, TypeResult, …) with that
// FORM_TYPE ("" for none).
func New(typ, formType string) *Form {
	return &Form{Type: typ, FormType: formType}
}

// Add appends a field and returns it, for its options or its Required
// flag to be set.
func (f *Form) Add(name, typ, label string, values ...string) *Field {
	f.Fields = append(f.Fields, Field{Var: name, Type: typ, Label: label, Values: values})
	return &f.Fields[len(f.Fields)-1]
}

// Option appends a choice to a list field and returns fd.
func (fd *Field) Option(value, label string) *Field {
	fd.Options = append(fd.Options, Option{value, label})
	return fd
}

// Element returns the form as <x xmlns='jabber:x:data'/>.
func (f Form) Element() *xmlstream.Element {
	x := xmlstream.NewElement(NS, "x").SetAttr("type", f.Type)
	if f.Title != "" {
		x.Append(xmlstream.NewElement(NS, "title").AppendText(f.Title))
	}
	if f.Instructions != "" {
		x.Append(xmlstream.NewElement(NS, "instructions").AppendText(f.Instructions))
	}
	if f.FormType != "" {
		x.Append(Field{Var: "FORM_TYPE", Type: "hidden", Values: []string{f.FormType}}.Element())
	}
	for _, fd := range f.Fields {
		x.Append(fd.Element())
	}
	x.Append(f.Extra...)
	return x
}

// Element returns the field as <field/>.
func (fd Field) Element() *xmlstream.Element {
	e := xmlstream.NewElement(NS, "field")
	if fd.Var != "" {
		e.SetAttr("var", fd.Var)
	}
	if fd.Type != "" {
		e.SetAttr("type", fd.Type)
	}
	if fd.Label != "" {
		e.SetAttr("label", fd.Label)
	}
	if fd.Required {
		e.Append(xmlstream.NewElement(NS, "required"))
	}
	for _, v := range fd.Values { // values before options: XEP-0004's schema
		e.Append(xmlstream.NewElement(NS, "value").AppendText(v))
	}
	for _, o := range fd.Options {
		oe := xmlstream.NewElement(NS, "option").Append(xmlstream.NewElement(NS, "value").AppendText(o.Value))
		if o.Label != "" {
			oe.SetAttr("label", o.Label)
		}
		e.Append(oe)
	}
	return e
}

// Parse reads the data form x. The FORM_TYPE field goes to FormType
// (trimmed; its first value), the others to Fields in order. A field
// without a var (other than a fixed one, which may have none) or one
// given twice is an error (XEP-0004 §3.2: var is unique in a form).
func Parse(x *xmlstream.Element) (*Form, error) {
	if x == nil || x.Name.Space != NS || x.Name.Local != "x" {
		return nil, fmt.Errorf("dataform: not a data form")
	}
	f := &Form{Type: x.Attribute("type")}
	seen := make(map[string]bool)
	for _, c := range x.ChildrenNS(NS) {
		switch c.Name.Local {
		case "title":
			f.Title = c.Text()
		case "instructions":
			f.Instructions = c.Text()
		case "field":
			fd := Field{Var: c.Attribute("var"), Type: c.Attribute("type"), Label: c.Attribute("label")}
			for _, v := range c.ChildrenNS(NS) {
				switch v.Name.Local {
				case "value":
					fd.Values = append(fd.Values, v.Text())
				case "required":
					fd.Required = true
				}
			}
			switch {
			case fd.Var == "FORM_TYPE":
				if len(fd.Values) > 0 {
					f.FormType = strings.TrimSpace(fd.Values[0])
				}
				continue
			case fd.Var == "" && fd.Type == "fixed":
			case fd.Var == "":
				return nil, fmt.Errorf("dataform: a field without a var")
			case seen[fd.Var]:
				return nil, fmt.Errorf("dataform: field %q given twice", fd.Var)
			}
			seen[fd.Var] = true
			f.Fields = append(f.Fields, fd)
		}
	}
	return f, nil
}

// Field returns the field named name.
func (f *Form) Field(name string) (Field, bool) {
	for _, fd := range f.Fields {
		if fd.Var == name {
			return fd, true
		}
	}
	return Field{}, false
}

// Values returns the values of the field named name (nil if absent).
func (f *Form) Values(name string) []string {
	fd, _ := f.Field(name)
	return fd.Values
}

// Value returns the first value of the field named name, or "".
func (f *Form) Value(name string) string { return fd1(f.Values(name)) }

// Value returns the field's first value, or "".
func (fd Field) Value() string { return fd1(fd.Values) }

func fd1(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// Bool is the value of a boolean field: "1" or "0" (XEP-0004 §3.3).
func Bool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// FormType returns the FORM_TYPE of the data form x without parsing the
// rest: the first value of its FORM_TYPE field, trimmed, or "".
func FormType(x *xmlstream.Element) string {
	if x == nil {
		return ""
	}
	for _, c := range x.ChildrenNS(NS) {
		if c.Name.Local == "field" && c.Attribute("var") == "FORM_TYPE" {
			if v := c.Child(NS, "value"); v != nil {
				return strings.TrimSpace(v.Text())
			}
			return ""
		}
	}
	return ""
}

// Choices appends the choices of a list field given as pairs of value and
// label ("" for none) and returns fd.
func (fd *Field) Choices(valueLabel ...string) *Field {
	for i := 0; i+1 < len(valueLabel); i += 2 {
		fd.Option(valueLabel[i], valueLabel[i+1])
	}
	return fd
}
