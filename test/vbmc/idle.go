package vbmc

import (
	"context"
	"sync"
)

// IdleRunner stands in for QEMU in tests of ferric-vbmc's clients (the conductor's redfish and ipmi drivers): a
// started "VM" runs until it is killed or its ACPI power button is pressed, which it obeys at once as a guest
// that shuts down would. Nothing is executed.
type IdleRunner struct{}

type idleProc struct {
	once sync.Once
	done chan struct{}
}

func (p *idleProc) Done() <-chan struct{} { return p.done }
func (p *idleProc) Kill() error           { p.once.Do(func() { close(p.done) }); return nil }
func (p *idleProc) Powerdown() error      { return p.Kill() }

// Start starts an idle "VM".
func (IdleRunner) Start(context.Context, StartSpec) (Process, error) {
	return &idleProc{done: make(chan struct{})}, nil
}
