//! Keeps `openapi.yaml` true to the router: every route, method and status the router serves is
//! described and nothing else is; every example in the description validates against its
//! schema; and real answers — one for every (route, status) pair of `ROUTES`, produced by the
//! router over a bootstrapped deployment — validate against the schema of their status, with
//! every required field present and no undocumented field.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use shared::api::dataset::parse_request;
use shared::api::fixture::{deployed_pipeline, local_config, open_pipeline};
use shared::api::{Api, ApiLimits, ROUTES, router};
use shared::store::PutMode;
use tower::ServiceExt;

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn spec() -> Value {
    let text = std::fs::read_to_string(repo("openapi.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// Follows `$ref` (local references only) until a node without one.
fn resolve<'a>(spec: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references are supported: {reference}"));
        node = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling reference {reference}"));
    }
    panic!("reference cycle at {node}");
}

/// Checks `value` against `schema` (the subset of OpenAPI 3.0 schemas the description uses),
/// collecting every mismatch with its JSON path.
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{at}: null, but the schema is not nullable"));
        }
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for sub in all {
            validate(spec, sub, value, at, errors);
        }
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let kind = schema.get("type").and_then(Value::as_str);
    let fits = match kind {
        Some("object") => {
            let Some(object) = value.as_object() else {
                errors.push(format!("{at}: expected an object, got {value}"));
                return;
            };
            let empty = serde_json::Map::new();
            let properties = schema
                .get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap();
                assert!(
                    properties.contains_key(name),
                    "{at}: required '{name}' is not among the properties"
                );
                if !object.contains_key(name) {
                    errors.push(format!("{at}: required field '{name}' is missing"));
                }
            }
            for (name, field) in object {
                match properties.get(name) {
                    Some(field_schema) => {
                        validate(spec, field_schema, field, &format!("{at}.{name}"), errors)
                    }
                    // A free-form object (its fields documented in words) may hold anything.
                    None if schema.get("additionalProperties") == Some(&Value::Bool(true)) => {}
                    None => errors.push(format!("{at}: field '{name}' is not described")),
                }
            }
            true
        }
        Some("array") => {
            let Some(items) = value.as_array() else {
                errors.push(format!("{at}: expected an array, got {value}"));
                return;
            };
            let item_schema = schema.get("items").expect("array schema without items");
            for (i, item) in items.iter().enumerate() {
                validate(spec, item_schema, item, &format!("{at}[{i}]"), errors);
            }
            true
        }
        Some("string") => {
            value.is_string()
                && (schema.get("format").and_then(Value::as_str) != Some("date-time")
                    || chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).is_ok())
        }
        Some("number") => value.is_number(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        other => panic!("{at}: schema without a supported type: {other:?}"),
    };
    if !fits {
        errors.push(format!("{at}: {value} is not of type {kind:?}"));
    }
}

fn assert_valid(spec: &Value, schema: &Value, value: &Value, what: &str) {
    let mut errors = Vec::new();
    validate(spec, schema, value, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{what}:\n{}\n{value:#}",
        errors.join("\n")
    );
}

const OPERATIONS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The JSON schema of an answer with `status` to `method path`.
fn answer_schema<'a>(spec: &'a Value, path: &str, method: &Method, status: u16) -> &'a Value {
    let path_item = &spec["paths"][path];
    let response = if path_item.is_null() {
        assert_eq!(status, 404, "{method} {path}");
        &spec["x-unknown-route"]
    } else if path_item[method.as_str().to_ascii_lowercase()].is_null() {
        assert_eq!(status, 405, "{method} {path}");
        &path_item["x-method-not-allowed"]
    } else {
        &path_item[method.as_str().to_ascii_lowercase()]["responses"][status.to_string()]
    };
    assert!(
        !response.is_null(),
        "{method} {path} answered {status}, which openapi.yaml does not describe"
    );
    let content = &resolve(spec, response)["content"];
    let schema = match content.get("text/html") {
        // The one HTML answer (GET /report): a string, checked by `run` as HTML.
        Some(html) => &html["schema"],
        None => &content["application/json"]["schema"],
    };
    assert!(!schema.is_null(), "{method} {path} {status}: no schema");
    schema
}

/// Whether the description says `method path` answers HTML with `status`.
fn answers_html(spec: &Value, path: &str, method: &Method, status: u16) -> bool {
    let response =
        &spec["paths"][path][method.as_str().to_ascii_lowercase()]["responses"][status.to_string()];
    !response.is_null() && !resolve(spec, response)["content"]["text/html"].is_null()
}

#[test]
fn every_route_method_and_status_is_described_and_nothing_else() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.0"));
    let described: BTreeSet<&str> = spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = ROUTES.iter().map(|r| r.path).collect();
    assert_eq!(described, served);

    for route in &ROUTES {
        let item = &spec["paths"][route.path];
        let methods: Vec<&str> = OPERATIONS
            .iter()
            .copied()
            .filter(|m| !item[*m].is_null())
            .collect();
        assert_eq!(
            methods,
            [route.method.as_str().to_ascii_lowercase()],
            "{}",
            route.path
        );
        let statuses: BTreeSet<u16> = item[route.method.as_str().to_ascii_lowercase()]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|s| s.parse().unwrap())
            .collect();
        let served: BTreeSet<u16> = route.statuses.iter().copied().collect();
        assert_eq!(statuses, served, "{} {}", route.method, route.path);
        for status in &statuses {
            answer_schema(&spec, route.path, &route.method, *status);
        }
        let not_allowed = resolve(&spec, &item["x-method-not-allowed"]);
        assert!(!not_allowed["headers"]["Allow"].is_null(), "{}", route.path);
    }
    assert!(!resolve(&spec, &spec["x-unknown-route"])["content"].is_null());
}

#[test]
fn every_example_in_the_description_validates() {
    let spec = spec();
    let mut checked = 0;
    let mut pending = vec![(String::new(), &spec)];
    while let Some((at, node)) = pending.pop() {
        match node {
            Value::Object(map) => {
                if let Some(schema) = map.get("schema")
                    && at.ends_with("/content/application/json")
                {
                    let examples = map.get("example").into_iter().chain(
                        map.get("examples")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flat_map(|e| e.values().map(|e| &e["value"])),
                    );
                    for example in examples {
                        assert_valid(&spec, schema, example, &at);
                        checked += 1;
                    }
                }
                for (key, value) in map {
                    pending.push((format!("{at}/{key}"), value));
                }
            }
            Value::Array(items) => {
                for (i, value) in items.iter().enumerate() {
                    pending.push((format!("{at}/{i}"), value));
                }
            }
            _ => {}
        }
    }
    assert!(checked >= 7, "only {checked} examples found");

    // The request examples are requests the router accepts.
    let request_examples = &spec["paths"]["/prediction"]["post"]["requestBody"]["content"];
    for example in request_examples["application/json"]["examples"]
        .as_object()
        .unwrap()
        .values()
    {
        let body = serde_json::to_vec(&example["value"]).unwrap();
        assert!(parse_request(&body).is_ok(), "{example}");
    }
}

fn request(method: Method, path: &str, content_type: Option<&str>, body: &str) -> Request<Bytes> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(Bytes::from(body.to_string())).unwrap()
}

fn get(path: &str) -> Request<Bytes> {
    request(Method::GET, path, None, "")
}

fn post_json(body: &str) -> Request<Bytes> {
    request(Method::POST, "/prediction", Some("application/json"), body)
}

#[tokio::test]
async fn real_answers_for_every_route_and_status_validate_against_the_description() {
    let spec = spec();
    let seed = repo("data");
    let csv_example =
        spec["paths"]["/prediction"]["post"]["requestBody"]["content"]["text/csv"]["example"]
            .as_str()
            .unwrap()
            .to_string();

    let deployed_dir = tempfile::tempdir().unwrap();
    let (_, pipeline) = deployed_pipeline(deployed_dir.path(), &seed).await.unwrap();
    // New rows for the deployed model: one drift check, so /drift has a report to serve.
    let practice = std::fs::read(seed.join("practicedata/dataset1.csv")).unwrap();
    pipeline
        .locations
        .source_data
        .put("dataset1.csv", Bytes::from(practice), PutMode::Overwrite)
        .await
        .unwrap();
    shared::steps::fullprocess::run_full_process(&pipeline, "run-drift-check")
        .await
        .unwrap();
    let deployed = Api::new(pipeline.clone(), ApiLimits::default());
    let small = Api::new(
        pipeline,
        ApiLimits {
            max_body_bytes: 16,
            ..ApiLimits::default()
        },
    );
    let empty_dir = tempfile::tempdir().unwrap();
    let config = local_config(empty_dir.path(), &seed).unwrap();
    let empty = Api::new(open_pipeline(&config).await.unwrap(), ApiLimits::default());

    let cases: Vec<(&Api, Request<Bytes>, u16)> = vec![
        (&deployed, get("/health"), 200),
        (&empty, get("/health"), 200),
        (&deployed, post_json(r#"{"dataset": "testdata.csv"}"#), 200),
        (
            &deployed,
            request(Method::POST, "/prediction", Some("text/csv"), &csv_example),
            200,
        ),
        (&deployed, get("/scoring"), 200),
        (&deployed, get("/summarystats"), 200),
        (&deployed, get("/diagnostics"), 200),
        (&deployed, get("/drift"), 200),
        (&deployed, get("/report"), 200),
        (&deployed, post_json(r#"{"dataset": "../x.csv"}"#), 400),
        (&deployed, post_json(r#"{"dataset": "nosuch.csv"}"#), 404),
        (&deployed, get("/nosuchroute"), 404),
        (&deployed, get("/prediction"), 405),
        (&deployed, request(Method::DELETE, "/health", None, ""), 405),
        (&small, post_json(r#"{"dataset": "testdata.csv"}"#), 413),
        (
            &deployed,
            request(Method::POST, "/prediction", Some("text/plain"), "x"),
            415,
        ),
        (
            &deployed,
            request(Method::POST, "/prediction", Some("text/csv"), "a;b\n1;2\n"),
            422,
        ),
        (&empty, post_json("{}"), 503),
        (&empty, get("/scoring"), 503),
        (&empty, get("/summarystats"), 503),
        (&empty, get("/diagnostics"), 503),
        (&empty, get("/drift"), 503),
        (&deployed, get("/risk?top=3&offset=1"), 200),
        (&deployed, get("/risk?band=high"), 200),
        (&deployed, get("/risk?top=0"), 400),
        (&deployed, get("/risk?limit=3"), 400),
        (&deployed, get("/clients/lsid"), 200),
        (&deployed, get("/clients/nciw"), 200),
        (&deployed, get("/clients/a%0Ab"), 400),
        (&deployed, get("/clients/nosuchclient"), 404),
        (&empty, get("/risk"), 503),
        (&empty, get("/clients/lsid"), 503),
        (&empty, get("/report"), 503),
    ];
    let mut covered = BTreeSet::new();
    run(&spec, &mut covered, cases).await;

    // Broken records: 500 for the routes that read them, 503 for /health.
    let store = deployed_dir.path().join("store");
    for file in [
        "production/deployment.json",
        "compiled/ingestion_record.json",
        "reports/diagnostics.json",
        "reports/drift_latest.json",
        "reports/risk/latest.parquet",
    ] {
        std::fs::write(store.join(file), b"{ broken").unwrap();
    }
    // An unreadable page: a link to itself, which cannot be opened (ELOOP).
    let page = store.join("reports/index.html");
    std::fs::remove_file(&page).unwrap();
    std::os::unix::fs::symlink("index.html", &page).unwrap();
    run(
        &spec,
        &mut covered,
        vec![
            (&deployed, get("/health"), 503),
            (&deployed, post_json("{}"), 500),
            (&deployed, get("/scoring"), 500),
            (&deployed, get("/summarystats"), 500),
            (&deployed, get("/diagnostics"), 500),
            (&deployed, get("/drift"), 500),
            (&deployed, get("/risk"), 500),
            (&deployed, get("/clients/lsid"), 500),
            (&deployed, get("/report"), 500),
        ],
    )
    .await;

    for route in &ROUTES {
        for status in route.statuses {
            assert!(
                covered.contains(&(route.path.to_string(), *status)),
                "no real answer checked for {} {} {status}",
                route.method,
                route.path
            );
        }
    }
}

/// The route a request path is served by (`/clients/abcd` is `/clients/{corporation}`), or the
/// path itself when no route matches.
fn route_template(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES
        .iter()
        .find(|route| {
            let pattern: Vec<&str> = route.path.split('/').collect();
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()))
        })
        .map_or_else(|| path.to_string(), |route| route.path.to_string())
}

/// Sends each request, checks its status, validates the answer against the description, and
/// notes the (path, status) pair as covered.
async fn run(
    spec: &Value,
    covered: &mut BTreeSet<(String, u16)>,
    cases: Vec<(&Api, Request<Bytes>, u16)>,
) {
    for (api, request, expected) in cases {
        let method = request.method().clone();
        let path = route_template(request.uri().path());
        let response = answer(api, request).await;
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        if answers_html(spec, &path, &method, status) {
            assert_eq!(status, expected, "{method} {path}");
            assert_eq!(content_type, "text/html; charset=utf-8", "{method} {path}");
            let page = std::str::from_utf8(response.body()).unwrap();
            assert!(page.starts_with("<!DOCTYPE html>"), "{method} {path}");
            assert!(response.headers().contains_key("content-security-policy"));
            covered.insert((path, status));
            continue;
        }
        assert_eq!(content_type, "application/json", "{method} {path} {status}");
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert_valid(
            spec,
            answer_schema(spec, &path, &method, status),
            &body,
            &format!("{method} {path} {status}"),
        );
        assert_eq!(
            response.status() == StatusCode::METHOD_NOT_ALLOWED,
            response.headers().contains_key("allow")
        );
        covered.insert((path, status));
    }
}

/// One request through the API's router, the answer's body read whole.
async fn answer(api: &Api, request: Request<Bytes>) -> Response<Bytes> {
    let response = router(api.clone())
        .oneshot(request.map(axum::body::Body::from))
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, body)
}
