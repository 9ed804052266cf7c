package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestDeployTemplates runs the deploy template part of the conformance suite on every backend.
func TestDeployTemplates(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testDeployTemplates(t, open(t, store.Limits{})) })
	}
}

func testDeployTemplates(t *testing.T, s store.Store) {
	ctx := context.Background()
	// A shared PostgreSQL database keeps the templates of earlier runs (ResetForTests predates them).
	old, err := s.ListDeployTemplates(ctx, store.ListOptions{})
	require.NoError(t, err)
	for _, tp := range old {
		require.NoError(t, s.DeleteDeployTemplate(ctx, tp.UUID))
	}

	mk := func(name string) *store.DeployTemplate {
		tp := &store.DeployTemplate{UUID: uuid.NewString(), Name: name, CreatedAt: time.Now().UTC(),
			Steps: []store.TemplateStep{{Interface: "bios", Step: "apply_configuration", Priority: 10,
				Args: map[string]any{"settings": []any{map[string]any{"name": "A", "value": "1"}}}}}}
		require.NoError(t, s.CreateDeployTemplate(ctx, tp))
		return tp
	}
	a, b, c := mk("CUSTOM_B"), mk("CUSTOM_A"), mk("CUSTOM_C")

	got, err := s.GetDeployTemplate(ctx, a.Name)
	require.NoError(t, err)
	assert.Equal(t, a.UUID, got.UUID)
	assert.Equal(t, a.Steps, got.Steps)
	assert.Equal(t, map[string]any{}, got.Extra, "nil maps read back empty")
	got, err = s.GetDeployTemplate(ctx, a.UUID)
	require.NoError(t, err)
	assert.Equal(t, "CUSTOM_B", got.Name)
	_, err = s.GetDeployTemplate(ctx, "CUSTOM_NONE")
	assert.ErrorIs(t, err, store.ErrNotFound)

	var dup *store.DuplicateError
	err = s.CreateDeployTemplate(ctx, &store.DeployTemplate{UUID: uuid.NewString(), Name: "CUSTOM_A", CreatedAt: time.Now()})
	require.ErrorAs(t, err, &dup)
	assert.Equal(t, "name", dup.Field)
	assert.ErrorIs(t, err, store.ErrDuplicate)
	err = s.CreateDeployTemplate(ctx, &store.DeployTemplate{UUID: a.UUID, Name: "CUSTOM_NEW", CreatedAt: time.Now()})
	require.ErrorAs(t, err, &dup)
	assert.Equal(t, "uuid", dup.Field)

	list, err := s.ListDeployTemplates(ctx, store.ListOptions{SortKey: "name", Limit: 2})
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, []string{"CUSTOM_A", "CUSTOM_B"}, []string{list[0].Name, list[1].Name})
	list, err = s.ListDeployTemplates(ctx, store.ListOptions{SortKey: "name", Marker: list[1].UUID})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, c.UUID, list[0].UUID)
	_, err = s.ListDeployTemplates(ctx, store.ListOptions{SortKey: "steps"})
	assert.ErrorIs(t, err, store.ErrBadQuery)

	byNames, err := s.DeployTemplatesByNames(ctx, []string{"CUSTOM_C", "CUSTOM_A", "CUSTOM_UNKNOWN"})
	require.NoError(t, err)
	require.Len(t, byNames, 2)
	assert.Equal(t, []string{b.UUID, c.UUID}, []string{byNames[0].UUID, byNames[1].UUID}, "in name order")

	a.Name, a.Extra = "CUSTOM_D", map[string]any{"k": "v"}
	require.NoError(t, s.UpdateDeployTemplate(ctx, a))
	got, err = s.GetDeployTemplate(ctx, "CUSTOM_D")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"k": "v"}, got.Extra)
	assert.NotNil(t, got.UpdatedAt)
	a.Name = "CUSTOM_A"
	require.ErrorAs(t, s.UpdateDeployTemplate(ctx, a), &dup, "renaming onto another template's name")
	missing := &store.DeployTemplate{UUID: uuid.NewString(), Name: "CUSTOM_Z"}
	assert.ErrorIs(t, s.UpdateDeployTemplate(ctx, missing), store.ErrNotFound)

	require.NoError(t, s.DeleteDeployTemplate(ctx, a.UUID))
	assert.True(t, errors.Is(s.DeleteDeployTemplate(ctx, a.UUID), store.ErrNotFound))
	_, err = s.GetDeployTemplate(ctx, "CUSTOM_D")
	assert.ErrorIs(t, err, store.ErrNotFound)
}
