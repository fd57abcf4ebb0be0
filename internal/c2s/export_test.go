package c2s

// SetSMStart sets the initial XEP-0198 counters of the streams that enable
// stream management from now on, for tests of the 2^32 wrap, and returns
// a function that restores 0. Tests that use it must not run in parallel.
func SetSMStart(v uint32) (restore func()) {
	smStart = v
	return func() { smStart = 0 }
}

// FeatureNames returns the names of the negotiation features, in order.
func FeatureNames() []string {
	names := make([]string, len(features))
	for i, f := range features {
		names[i] = f.name
	}
	return names
}
