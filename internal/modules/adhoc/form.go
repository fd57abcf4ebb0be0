package adhoc

import (
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSData is the XEP-0004 Data Forms namespace.
const NSData = "jabber:x:data"

// Field is one field of a form the server sends (XEP-0004 §3.2).
type Field struct {
	Var, Type, Label string
	Required         bool
	Values           []string
	Options          []string // list-single and list-multi
}

// Form is a XEP-0004 form: its type (form, result), title, instructions,
// FORM_TYPE and fields.
type Form struct {
	Type, Title, Instructions, FormType string
	Fields                              []Field
	// Extra are further children of <x/> (the roster of
	// get-user-roster).
	Extra []*xmlstream.Element
}

// Element returns the form as <x xmlns='jabber:x:data'/>.
func (f Form) Element() *xmlstream.Element {
	x := xmlstream.NewElement(NSData, "x").SetAttr("type", f.Type)
	if f.Title != "" {
		x.Append(xmlstream.NewElement(NSData, "title").AppendText(f.Title))
	}
	if f.Instructions != "" {
		x.Append(xmlstream.NewElement(NSData, "instructions").AppendText(f.Instructions))
	}
	if f.FormType != "" {
		x.Append(Field{Var: "FORM_TYPE", Type: "hidden", Values: []string{f.FormType}}.element())
	}
	for _, fd := range f.Fields {
		x.Append(fd.element())
	}
	x.Append(f.Extra...)
	return x
}

func (fd Field) element() *xmlstream.Element {
	e := xmlstream.NewElement(NSData, "field").SetAttr("var", fd.Var)
	if fd.Type != "" {
		e.SetAttr("type", fd.Type)
	}
	if fd.Label != "" {
		e.SetAttr("label", fd.Label)
	}
	if fd.Required {
		e.Append(xmlstream.NewElement(NSData, "required"))
	}
	for _, o := range fd.Options {
		e.Append(xmlstream.NewElement(NSData, "option").SetAttr("label", o).
			Append(xmlstream.NewElement(NSData, "value").AppendText(o)))
	}
	for _, v := range fd.Values {
		e.Append(xmlstream.NewElement(NSData, "value").AppendText(v))
	}
	return e
}

// Values are the fields of a submitted form, by var.
type Values map[string][]string

// Get returns the first value of the field, or "".
func (v Values) Get(name string) string {
	if vs := v[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// parseSubmit returns the values of a submitted form (<x type='submit'/>),
// and ok false when x is not one.
func parseSubmit(x *xmlstream.Element) (Values, bool) {
	if x == nil || x.Attribute("type") != "submit" {
		return nil, false
	}
	v := make(Values)
	for _, fe := range x.ChildrenNS(NSData) {
		if fe.Name.Local != "field" || fe.Attribute("var") == "" {
			continue
		}
		name := fe.Attribute("var")
		var vals []string
		for _, ve := range fe.ChildrenNS(NSData) {
			if ve.Name.Local == "value" {
				vals = append(vals, ve.Text())
			}
		}
		v[name] = append(v[name], vals...)
	}
	return v, true
}
