//go:build !race

package xmlstream

// raceEnabled reports a -race build, where sync.Pool drops items at random
// and allocation counts are meaningless.
const raceEnabled = false
