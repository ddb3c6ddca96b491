//! The OpenAPI 3.1 document for `/api/v1`, written by hand next to the
//! handlers it describes.

use axum::Json;
use serde_json::{json, Value};

fn err_responses() -> Value {
    json!({
        "400": {"$ref": "#/components/responses/Error"},
        "401": {"$ref": "#/components/responses/Error"},
        "403": {"$ref": "#/components/responses/Error"},
        "404": {"$ref": "#/components/responses/Error"}
    })
}

fn op(summary: &str, params: Value, ok: Value) -> Value {
    let mut responses = err_responses();
    responses["200"] = ok;
    json!({"summary": summary, "parameters": params, "responses": responses})
}

fn q(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}})
}

pub fn spec() -> Value {
    let path_id =
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}});
    let list_ok = |schema: &str| json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "skyhold API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Inventory of cloud accounts. Authenticate with POST /auth/token, then send `Authorization: Bearer <token>`."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/auth/token": {
                "post": {
                    "summary": "Exchange a user name and password for an API token",
                    "security": [],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["username", "password"],
                        "properties": {"username": {"type": "string"}, "password": {"type": "string"}, "name": {"type": "string", "description": "label for the token"}}}}}},
                    "responses": {"201": {"description": "Created", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"token": {"type": "string"}, "id": {"type": "integer"}}}}}},
                        "401": {"$ref": "#/components/responses/Error"}, "429": {"$ref": "#/components/responses/Error"}}
                },
                "delete": {"summary": "Revoke the token this request is authenticated with", "responses": {"204": {"description": "Revoked"}}}
            },
            "/me": {"get": op("The authenticated user", json!([]), json!({"description": "OK"}))},
            "/tokens": {"get": op("The caller's API tokens (never their secrets)", json!([]), json!({"description": "OK"}))},
            "/tokens/{id}": {"delete": {"summary": "Revoke one of the caller's tokens",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": {"204": {"description": "Revoked"}, "404": {"$ref": "#/components/responses/Error"}}}},
            "/resources": {"get": op("List cached resources, filtered, sorted and paged", json!([
                q("kind", "a kind: instance, volume, snapshot, image, security_group, key_pair, elastic_ip, vpc, subnet, launch_template, load_balancer, target_group, auto_scaling_group, db_instance, dynamodb_table, cache_cluster, replication_group, stack, hosted_zone, dns_record, queue, topic, bucket, alarm"),
                q("account", "account name(s), comma-separated"),
                q("region", "region(s), comma-separated"),
                q("state", "state(s), comma-separated"),
                q("type", "instance/volume type(s), comma-separated"),
                q("q", "search language: words, kind:, account:, region:, state:, type:, owner:, name:, id: (globs), tag:KEY[=VALUE], -tag:KEY, age>7d, launched<2026-01-01, stopped>30d; '-' negates"),
                q("sort", "account | region | kind | name | provider_id | state | type | private_ip | public_ip | launch_time | owner; prefix '-' for descending"),
                q("limit", "1-1000, default 100"),
                q("cursor", "next_cursor from the previous page"),
                q("include_deleted", "true to include tombstoned resources")
            ]), list_ok("ResourcePage"))},
            "/resources/count": {"get": op("How many resources match (same filters as /resources), counted up to a cap",
                json!([q("kind", "resource kind"), q("account", "account(s)"), q("region", "region(s)"), q("state", "state(s)"), q("type", "type(s)"), q("q", "search language"), q("include_deleted", "true to count tombstoned resources")]),
                json!({"description": "OK: {count, more, cap}"}))},
            "/resources/{id}": {"get": op("One resource with its related resources",
                json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]), list_ok("Resource"))},
            "/resources/{id}/refresh": {"post": op("Targeted refresh: read this one resource from its provider now and return it as GET /resources/{id} does (tombstoned when gone)",
                json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]), list_ok("Resource"))},
            "/accounts": {"get": op("Configured accounts (never credentials)", json!([]), json!({"description": "OK"}))},
            "/sync": {"post": {"summary": "Start a sync of all accounts or one; with wait, return when done",
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object",
                    "properties": {"account": {"type": "string"}, "wait": {"type": "boolean"}}}}}},
                "responses": {"200": {"description": "Done (wait=true)"}, "202": {"description": "Started"},
                    "403": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}}},
            "/changes": {"get": op("Change history (appeared, changed, disappeared, reappeared), newest first", json!([
                q("since", "RFC 3339 time, a date, or a duration back from now (24h, 7d); default 24h"),
                q("kind", "resource kind"), q("account", "account name"),
                q("limit", "1-1000, default 100"), q("cursor", "next_cursor from the previous page")
            ]), json!({"description": "OK"}))},
            "/sync/status": {"get": op("Sync status per account, region and kind", json!([]), json!({"description": "OK"}))},
            "/dashboard": {"get": op("Headline figures", json!([]), json!({"description": "OK"}))},
            "/views": {
                "get": op("The caller's saved views (named searches)", json!([]), json!({"description": "OK"})),
                "post": {"summary": "Save a view; the search must parse",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                        "required": ["name", "q"], "properties": {"name": {"type": "string"}, "q": {"type": "string", "description": "search-language text"}}}}}},
                    "responses": {"201": {"description": "Created"}, "400": {"$ref": "#/components/responses/Error"},
                        "409": {"$ref": "#/components/responses/Error"}}}
            },
            "/views/{id}": {"delete": {"summary": "Delete one of the caller's views", "parameters": [path_id.clone()],
                "responses": {"204": {"description": "Deleted"}, "404": {"$ref": "#/components/responses/Error"}}}},
            "/resources/{id}/template": {"get": op("A stack's template (fetched on demand, then cached)", json!([path_id.clone()]), json!({"description": "OK"}))},
            "/resources/{id}/alarm-history": {"get": op("An alarm's state history, newest first (read from the provider)", json!([path_id.clone()]), json!({"description": "OK"}))},
            "/resources/{id}/objects": {"get": op("One page of a browsable bucket's objects and prefixes below a prefix",
                json!([path_id.clone(), q("prefix", "list below this prefix ('' for the top)"), q("token", "next_token of the previous page")]), json!({"description": "OK"}))},
            "/resources/{id}/objects/url": {"get": op("A presigned download URL for one object (valid 5 minutes)",
                json!([path_id.clone(), {"name": "key", "in": "query", "required": true, "schema": {"type": "string"}}]), json!({"description": "OK"}))}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": {"type": "string", "enum": ["unauthenticated", "invalid_credentials", "forbidden", "not_found",
                        "invalid_parameter", "bad_request", "rate_limited", "conflict", "unavailable", "internal"]},
                    "message": {"type": "string"}}}}},
                "Resource": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "provider_id": {"type": "string"}, "kind": {"type": "string"},
                    "account": {"type": "string"}, "region": {"type": "string"}, "name": {"type": "string"},
                    "state": {"type": "string"}, "type": {"type": "string"}, "owner": {"type": "string"},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "attributes": {"type": "object"},
                    "first_seen": {"type": "string", "format": "date-time"},
                    "last_seen": {"type": "string", "format": "date-time"},
                    "deleted_at": {"type": ["string", "null"], "format": "date-time"}}},
                "ResourcePage": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}},
                    "next_cursor": {"type": ["string", "null"]}}}
            }
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(spec())
}
