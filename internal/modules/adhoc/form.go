package adhoc

import (
	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSData is the XEP-0004 Data Forms namespace.
const NSData = dataform.NS

// Field is one field of a form the server sends (XEP-0004 §3.2).
type Field = dataform.Field

// Form is a XEP-0004 form: its type (form, result), title, instructions,
// FORM_TYPE and fields, and further children of <x/> (the roster of
// get-user-roster) in Extra.
type Form = dataform.Form

// options are list choices whose labels are their values.
func options(values ...string) []dataform.Option {
	out := make([]dataform.Option, len(values))
	for i, v := range values {
		out[i] = dataform.Option{Value: v, Label: v}
	}
	return out
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
// and ok false when x is not one, or not a valid one (a field without a
// var, or twice).
func parseSubmit(x *xmlstream.Element) (Values, bool) {
	if x == nil || x.Attribute("type") != dataform.TypeSubmit {
		return nil, false
	}
	f, err := dataform.Parse(x)
	if err != nil {
		return nil, false
	}
	v := make(Values, len(f.Fields))
	for _, fd := range f.Fields {
		if fd.Var != "" {
			v[fd.Var] = fd.Values
		}
	}
	return v, true
}
