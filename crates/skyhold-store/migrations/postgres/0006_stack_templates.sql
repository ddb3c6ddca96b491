-- CloudFormation templates, fetched on demand and kept until the stack
-- changes (`version` is the stack's last-update marker when fetched).
CREATE TABLE stack_templates (
    resource_id BIGINT  PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
    version     TEXT    NOT NULL,
    fetched_at  BIGINT  NOT NULL,
    body        TEXT    NOT NULL
);
