package jid_test

import (
	"errors"
	"fmt"

	"github.com/ode-xmpp/ode/jid"
)

func ExampleParse() {
	j, err := jid.Parse("Juliet@Example.COM/Balcony")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(j)
	fmt.Println(j.Local(), j.DomainString(), j.Resource())
	fmt.Println(j.Bare(), j.Domain())
	// Output:
	// juliet@example.com/Balcony
	// juliet example.com Balcony
	// juliet@example.com example.com
}

func ExampleParse_error() {
	_, err := jid.Parse("foo bar@example.com")
	fmt.Println(errors.Is(err, jid.ErrInvalidLocal))
	_, err = jid.Parse("juliet@example.com/")
	fmt.Println(errors.Is(err, jid.ErrInvalidResource), errors.Is(err, jid.ErrEmpty))
	// Output:
	// true
	// true true
}

func ExampleJID_WithResource() {
	bare := jid.MustParse("romeo@example.net")
	full, err := bare.WithResource("orchard")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(full, full.IsBare(), full.Bare().Equal(bare))
	// Output: romeo@example.net/orchard false true
}

func ExampleJID_DomainString() {
	// Domain names are stored as U-labels.
	j := jid.MustParse("user@xn--bcher-kva.example")
	fmt.Println(j.DomainString())
	// Output: bücher.example
}
