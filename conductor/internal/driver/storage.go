package driver

// The storage interface (Ironic's StorageInterface, the node's storage_interface field): what attaches a node's
// volume targets before it boots. Ferric offers Ironic's noop (the default of every hardware type) and, on
// fake-hardware, fake; Ironic's cinder and external need a block storage service Ferric does not talk to. Both
// accept every node, as Ironic's do: with noop the volume connectors and targets are records only, and nothing
// is attached (Ferric has no boot-from-volume deploy).

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Interface names of the storage kind.
const (
	StorageNoop = "noop"
	StorageFake = "fake"
)

// Storage checks that a node's volumes can be attached (Ironic's StorageInterface.validate). Attaching and
// detaching come with a deploy interface that boots from a volume; none does yet.
type Storage interface {
	Validate(ctx context.Context, n *store.Node) error
}

// NoopStorage is Ironic's noop storage interface: nothing to attach, every node valid.
type NoopStorage struct{}

// Validate accepts every node.
func (NoopStorage) Validate(context.Context, *store.Node) error { return nil }

// FakeStorage is fake-hardware's fake storage interface: every node valid, as Ironic's FakeStorage.
type FakeStorage struct{}

// Validate accepts every node.
func (FakeStorage) Validate(context.Context, *store.Node) error { return nil }

// AddStorage registers a storage interface implementation under name.
func (r *Registry) AddStorage(name string, s Storage) {
	if r.hw.storage == nil {
		r.hw.storage = map[string]Storage{}
	}
	r.hw.storage[name] = s
}

// AddStorageInterfaces registers the noop and fake storage interfaces.
func AddStorageInterfaces(r *Registry) {
	r.AddStorage(StorageNoop, NoopStorage{})
	r.AddStorage(StorageFake, FakeStorage{})
}

// storageTask fills the task's storage interface. A registry built without storage interfaces (and a node stored
// before the kind was offered) gets noop: the kind's do-nothing member, which Ironic enables by default.
func (r *Registry) storageTask(t *Task) {
	var ok bool
	if t.Storage, ok = r.hw.storage[t.Node.Interfaces["storage"]]; !ok {
		t.Storage = NoopStorage{}
	}
}
