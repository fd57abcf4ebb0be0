//go:build !race

package bosh_test

const raceEnabled = false
