-- Deploy templates (Ironic's deploy_templates, API 1.55): a named list of deploy steps, applied to a deploy whose
-- instance_info.traits names the template. The steps and extra live in body (JSON), name and uuid are unique.
-- IF NOT EXISTS: tests that roll a database back to an older version (migrate_test.go) drop only the tables they know.
CREATE TABLE IF NOT EXISTS deploy_templates (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    body TEXT NOT NULL
);
