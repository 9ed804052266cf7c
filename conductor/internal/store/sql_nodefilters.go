package store

// Node list filters on fields of the node's JSON body (fault, lessee, project, description_contains, retired):
// they are conditions of the list query itself, so LIMIT and the marker page over the matching nodes only, on
// SQLite (json_extract) and PostgreSQL (jsonb ->>) alike.

// bodyText is the SQL expression of a body string field, the empty string when the field is absent (the body
// omits empty strings).
func (s *SQL) bodyText(key string) string { return "COALESCE(" + s.bodyField(key) + ", '')" }

// nodeBodyWhere adds the body-field conditions of f to a node query.
func (s *SQL) nodeBodyWhere(f NodeFilter, where []string, args []any) ([]string, []any) {
	if f.Fault != nil {
		where = append(where, s.bodyText("fault")+" = ?")
		args = append(args, *f.Fault)
	}
	if f.Lessee != nil {
		where = append(where, s.bodyText("lessee")+" = ?")
		args = append(args, *f.Lessee)
	}
	if f.Project != nil {
		// Ironic's project filter: the node's owner or its lessee.
		where = append(where, "(COALESCE(owner, '') = ? OR "+s.bodyText("lessee")+" = ?)")
		args = append(args, *f.Project, *f.Project)
	}
	if f.DescriptionContains != nil {
		// instr and strpos find a plain substring (LIKE would read % and _ and ignore case in SQLite); both
		// answer 1 for an empty needle, so an empty filter matches every node, as a substring test does.
		fn := "instr"
		if s.dialect == postgres {
			fn = "strpos"
		}
		where = append(where, fn+"("+s.bodyText("description")+", ?) > 0")
		args = append(args, *f.DescriptionContains)
	}
	if f.Retired != nil {
		// The body always holds retired as a JSON boolean: SQLite's json_extract reads it as 1 or 0,
		// PostgreSQL's ->> as 'true' or 'false'.
		if s.dialect == postgres {
			where = append(where, "COALESCE("+s.bodyField("retired")+", 'false') = ?")
			args = append(args, map[bool]string{true: "true", false: "false"}[*f.Retired])
		} else {
			where = append(where, "COALESCE("+s.bodyField("retired")+", 0) = ?")
			args = append(args, map[bool]int{true: 1, false: 0}[*f.Retired])
		}
	}
	return where, args
}
