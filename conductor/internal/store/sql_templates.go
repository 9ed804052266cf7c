package store

// Deploy templates (Ironic's deploy_templates): a name (a trait name), a list of deploy steps and extra. One row
// per template, the steps and extra in a JSON body; name and uuid are unique columns so that both clashes are
// refused by the database itself, whatever the number of conductors writing.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DeployTemplate is a named list of deploy steps. A deploy whose instance_info.traits holds the name runs them.
type DeployTemplate struct {
	ID        int64          `json:"-"`
	UUID      string         `json:"uuid"`
	Name      string         `json:"name"`
	Steps     []TemplateStep `json:"steps"`
	Extra     map[string]any `json:"extra"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt *time.Time     `json:"updated_at,omitempty"`
}

// TemplateStep is one deploy step of a template, the four fields Ironic keeps.
type TemplateStep struct {
	Interface string         `json:"interface"`
	Step      string         `json:"step"`
	Args      map[string]any `json:"args"`
	Priority  int            `json:"priority"`
}

// Normalize replaces nil maps and slices with empty ones so the API renders {} and [].
func (t *DeployTemplate) Normalize() {
	if t.Extra == nil {
		t.Extra = map[string]any{}
	}
	if t.Steps == nil {
		t.Steps = []TemplateStep{}
	}
	for i := range t.Steps {
		if t.Steps[i].Args == nil {
			t.Steps[i].Args = map[string]any{}
		}
	}
}

// DuplicateError says a unique field (Field: "uuid" or "name") already has Value. It matches ErrDuplicate.
type DuplicateError struct {
	Field string
	Value string
}

func (e *DuplicateError) Error() string { return fmt.Sprintf("%s %s is in use", e.Field, e.Value) }

// Unwrap makes the error match ErrDuplicate.
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// DeployTemplateSortKeys are the template fields a listing may be sorted by (Ironic refuses extra and steps).
func DeployTemplateSortKeys() []string {
	return []string{"id", "uuid", "name", "created_at", "updated_at"}
}

// templateDup turns a unique violation into a *DuplicateError naming the column. SQLite says "UNIQUE constraint
// failed: deploy_templates.name", PostgreSQL names the constraint (deploy_templates_name_key).
func templateDup(err error, t *DeployTemplate) error {
	if !isUnique(err) {
		return nil
	}
	if strings.Contains(err.Error(), "name") {
		return &DuplicateError{Field: "name", Value: t.Name}
	}
	return &DuplicateError{Field: "uuid", Value: t.UUID}
}

// CreateDeployTemplate inserts a template; UUID and CreatedAt must be set by the caller.
func (s *SQL) CreateDeployTemplate(ctx context.Context, t *DeployTemplate) error {
	t.Normalize()
	body, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode deploy template: %w", err)
	}
	// The unique columns make a clash the database's answer, so two conductors cannot both create one name.
	row := s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO deploy_templates (uuid, name, created_at, updated_at, body)
		VALUES (?,?,?,?,?) RETURNING id`), t.UUID, t.Name, fmtTime(&t.CreatedAt), fmtTime(t.UpdatedAt), string(body))
	if err := row.Scan(&t.ID); err != nil {
		if dup := templateDup(err, t); dup != nil {
			return dup
		}
		return fmt.Errorf("insert deploy template: %w", err)
	}
	return nil
}

func scanTemplate(sc rowScanner) (*DeployTemplate, error) {
	return scanBody[DeployTemplate](sc, "deploy template")
}

// GetDeployTemplate finds a template by UUID or name.
func (s *SQL) GetDeployTemplate(ctx context.Context, ident string) (*DeployTemplate, error) {
	v, err := scanTemplate(s.db.QueryRowContext(ctx,
		s.rebind(`SELECT id, body FROM deploy_templates WHERE uuid = ? OR name = ?`), ident, ident))
	return one(v, err, "deploy template "+ident)
}

// ListDeployTemplates lists templates, paged and sorted by o.
func (s *SQL) ListDeployTemplates(ctx context.Context, o ListOptions) ([]*DeployTemplate, error) {
	tail, args, err := s.page(ctx, "deploy_templates", DeployTemplateSortKeys(), o, nil, nil)
	if err != nil {
		return nil, err
	}
	return s.queryTemplates(ctx, true, `SELECT id, body FROM deploy_templates`+tail, args...)
}

// DeployTemplatesByNames returns the templates with these names, in name order.
func (s *SQL) DeployTemplatesByNames(ctx context.Context, names []string) ([]*DeployTemplate, error) {
	if len(names) == 0 {
		return nil, nil
	}
	// One placeholder per name: instance traits are at most the node's 50 traits, well within both databases'
	// parameter limits.
	marks := strings.TrimSuffix(strings.Repeat("?,", len(names)), ",")
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	return s.queryTemplates(ctx, false, `SELECT id, body FROM deploy_templates WHERE name IN (`+marks+`) ORDER BY name`, args...)
}

// queryTemplates runs a template query, through the statement cache when prepared (a list page's query; not
// the IN list by names, whose text varies with their number).
func (s *SQL) queryTemplates(ctx context.Context, prepared bool, q string, args ...any) ([]*DeployTemplate, error) {
	query := s.query
	if prepared {
		query = s.queryCached
	}
	rows, err := query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list deploy templates: %w", err)
	}
	out, err := collect(rows, s.bodies.templates.scan("deploy template"))
	if err != nil {
		return nil, fmt.Errorf("list deploy templates: %w", err)
	}
	return out, nil
}

// UpdateDeployTemplate writes the template with t.UUID (its name, steps and extra) and sets UpdatedAt.
func (s *SQL) UpdateDeployTemplate(ctx context.Context, t *DeployTemplate) error {
	t.Normalize()
	now := s.now().UTC()
	t.UpdatedAt = &now
	body, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode deploy template: %w", err)
	}
	// Last writer wins, as in Ironic: a template is not locked between the read of a PATCH and this write.
	res, err := s.exec(ctx, `UPDATE deploy_templates SET name = ?, updated_at = ?, body = ? WHERE uuid = ?`,
		t.Name, fmtTime(t.UpdatedAt), string(body), t.UUID)
	if err != nil {
		if dup := templateDup(err, t); dup != nil {
			return dup
		}
		return fmt.Errorf("update deploy template %s: %w", t.UUID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deploy template %s: %w", t.UUID, ErrNotFound)
	}
	return nil
}

// DeleteDeployTemplate removes a template by UUID.
func (s *SQL) DeleteDeployTemplate(ctx context.Context, uuid string) error {
	res, err := s.exec(ctx, `DELETE FROM deploy_templates WHERE uuid = ?`, uuid)
	if err != nil {
		return fmt.Errorf("delete deploy template %s: %w", uuid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deploy template %s: %w", uuid, ErrNotFound)
	}
	return nil
}
