//! `GET /openapi.json`: a well-formed OpenAPI 3 document that lists every route of the router
//! with its methods, the contract's status codes, and bodies shaped as the server answers.
//!
//! axum cannot list a router's routes, so the routes are read from the `.route("…", …)` calls
//! of the two router sources, the one place they are declared.

use crate::helpers::{tony_blair, TestApp};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const ROUTER_SOURCES: [(&str, &str); 2] = [
    ("http/mod.rs", include_str!("../../src/http/mod.rs")),
    (
        "http/pages/mod.rs",
        include_str!("../../src/http/pages/mod.rs"),
    ),
];

const METHODS: [&str; 8] = [
    "get", "post", "put", "delete", "patch", "head", "options", "trace",
];

type Routes = BTreeMap<String, BTreeSet<String>>;

/// `path → methods` of every `.route("path", get(..).delete(..))` call in `source`, with axum's
/// `{*rest}` written as OpenAPI's `{rest}`.
fn declared_routes(source: &str) -> Routes {
    const CALL: &str = ".route(\"";
    let mut routes = Routes::new();
    let mut rest = source;
    while let Some(at) = rest.find(CALL) {
        rest = &rest[at + CALL.len()..];
        let end = rest.find('"').expect("the route's closing quote");
        let path = rest[..end].replace("{*", "{");
        // The method router: the calls at the top level of the rest of `.route(`'s arguments.
        let (mut depth, mut word, mut methods) = (0, String::new(), BTreeSet::new());
        for c in rest[end + 1..].chars() {
            match c {
                '(' => {
                    if depth == 0 && METHODS.contains(&word.as_str()) {
                        methods.insert(word.clone());
                    }
                    depth += 1;
                }
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                _ => {}
            }
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                word.clear();
            }
        }
        assert!(!methods.is_empty(), "no method found for route {path}");
        routes.entry(path).or_default().extend(methods);
    }
    routes
}

fn router_routes() -> Routes {
    let mut routes = Routes::new();
    for (name, source) in ROUTER_SOURCES {
        let found = declared_routes(source);
        assert!(!found.is_empty(), "no `.route(` call found in {name}");
        for (path, methods) in found {
            routes.entry(path).or_default().extend(methods);
        }
    }
    routes
}

fn documented_routes(doc: &Value) -> Routes {
    doc["paths"]
        .as_object()
        .expect("`paths` is an object")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item is an object")
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// `schema`, or the component its `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{reference} is not a component schema"));
            let found = &doc["components"]["schemas"][name];
            assert!(found.is_object(), "{reference} names no schema");
            found
        }
        None => schema,
    }
}

fn property_names(doc: &Value, schema: &Value) -> BTreeSet<String> {
    resolve(doc, schema)["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties in {schema}"))
        .keys()
        .cloned()
        .collect()
}

fn json_schema<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} documents no JSON body for {status}"
    );
    schema
}

fn keys(body: &Value) -> BTreeSet<String> {
    body.as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"))
        .keys()
        .cloned()
        .collect()
}

async fn openapi_document(app: &TestApp) -> Value {
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    r.json().await.expect("/openapi.json is JSON")
}

/// Every `$ref` anywhere in `value` names a schema of the document.
fn check_refs(doc: &Value, value: &Value) {
    match value {
        Value::Object(fields) => {
            if fields.contains_key("$ref") {
                resolve(doc, value);
            }
            fields.values().for_each(|v| check_refs(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| check_refs(doc, v)),
        _ => {}
    }
}

async fn the_document_is_openapi_3(app: TestApp) {
    let doc = openapi_document(&app).await;
    let version = doc["openapi"]
        .as_str()
        .expect("`openapi` names the version");
    assert!(version.starts_with("3."), "version {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    check_refs(&doc, &doc);
    for (path, methods) in documented_routes(&doc) {
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in methods {
            let operation = &doc["paths"][&path][&method];
            let responses = operation["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for status in responses.keys() {
                assert!(
                    status.len() == 3 && status.parse::<u16>().is_ok(),
                    "{method} {path}: status {status}"
                );
            }
            // Every `{name}` of the path is a required path parameter, and nothing else is.
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let in_path: BTreeSet<&str> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .inspect(|p| assert_eq!(p["required"], true, "{method} {path}: {p}"))
                .map(|p| p["name"].as_str().expect("a parameter's name"))
                .collect();
            assert_eq!(in_path, templated, "{method} {path}: path parameters");
        }
    }
}

async fn every_route_of_the_router_is_documented(app: TestApp) {
    let doc = openapi_document(&app).await;
    let router = router_routes();
    assert!(
        router["/users/{id}"] == BTreeSet::from(["get".into(), "delete".into()]),
        "the router sources were misread: {router:?}"
    );
    let documented = documented_routes(&doc);
    for (path, methods) in &router {
        assert_eq!(
            documented.get(path),
            Some(methods),
            "route {path} {methods:?} is not documented as such in /openapi.json"
        );
    }
    for (path, methods) in &documented {
        assert_eq!(
            router.get(path),
            Some(methods),
            "/openapi.json documents {path} {methods:?}, which the router does not serve"
        );
    }
}

async fn the_contract_is_in_the_document(app: TestApp) {
    let doc = openapi_document(&app).await;
    let statuses = |path: &str| -> BTreeSet<u16> {
        doc["paths"][path]["post"]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("POST {path} is not documented"))
            .keys()
            .map(|s| s.parse().expect("a status code"))
            .collect()
    };
    // The Flask service's codes, and the ones docs/api.md adds.
    assert!(statuses("/register").is_superset(&BTreeSet::from([200, 400, 413])));
    assert!(statuses("/verify").is_superset(&BTreeSet::from([200, 400, 404, 413, 503])));

    // Every JSON error answer of the API is `{ "error", "message", ... }`.
    for (path, methods) in documented_routes(&doc) {
        for method in methods {
            let responses = doc["paths"][&path][&method]["responses"]
                .as_object()
                .expect("responses");
            for (status, response) in responses {
                let schema = &response["content"]["application/json"]["schema"];
                if status.starts_with(['4', '5']) && schema.is_object() && path != "/health" {
                    let fields = property_names(&doc, schema);
                    assert!(
                        fields.contains("error") && fields.contains("message"),
                        "{method} {path} {status}: {fields:?}"
                    );
                }
            }
        }
    }

    // Every upload is a multipart form with its fields.
    let form_fields = |path: &str| {
        let schema =
            &doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"];
        assert!(
            schema.is_object(),
            "POST {path} documents no multipart form"
        );
        property_names(&doc, schema)
    };
    let fields = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        form_fields("/register"),
        fields(&[
            "first_name",
            "last_name",
            "image",
            "face",
            "box",
            "allow_duplicate",
            "source"
        ])
    );
    assert_eq!(
        form_fields("/verify"),
        fields(&["image", "kiosk", "challenge"])
    );
    assert_eq!(form_fields("/detect"), fields(&["image"]));
    assert_eq!(
        form_fields("/users/{id}/faces"),
        fields(&["image", "face", "box", "allow_duplicate", "source"])
    );
}

/// The documented bodies have the fields the server actually answers with.
async fn documented_bodies_match_the_answers(app: TestApp) {
    let doc = openapi_document(&app).await;
    let photos = tony_blair();

    let health: Value = app.get_json("/health").await;
    let schema = json_schema(&doc, "/health", "get", 200);
    assert_eq!(keys(&health), property_names(&doc, schema), "/health");

    let stranger = app.verify(&photos[0]).await;
    assert_eq!(stranger.status(), 404);
    let body: Value = stranger.json().await.unwrap();
    let schema = json_schema(&doc, "/verify", "post", 404);
    assert_eq!(keys(&body), property_names(&doc, schema), "/verify 404");

    app.register_ok("Tony", "Blair", &photos[0]).await;
    let users: Value = app.get_json("/users").await;
    let schema = &json_schema(&doc, "/users", "get", 200)["items"];
    assert_eq!(keys(&users[0]), property_names(&doc, schema), "/users");

    let id = users[0]["id"].as_i64().unwrap();
    let faces: Value = app.get_json(&format!("/users/{id}/faces")).await;
    let schema = &json_schema(&doc, "/users/{id}/faces", "get", 200)["items"];
    assert_eq!(
        keys(&faces[0]),
        property_names(&doc, schema),
        "/users/{{id}}/faces"
    );
    let settings: Value = app.get_json("/settings").await;
    let schema = json_schema(&doc, "/settings", "get", 200);
    assert_eq!(keys(&settings), property_names(&doc, schema), "/settings");

    let duplicate = app.register("Anthony", "Blair", &photos[1]).await;
    assert_eq!(duplicate.status(), 409);
    let body: Value = duplicate.json().await.unwrap();
    let schema = json_schema(&doc, "/register", "post", 409);
    assert_eq!(keys(&body), property_names(&doc, schema), "/register 409");
    let person = &resolve(&doc, schema)["properties"]["person"];
    assert_eq!(
        keys(&body["person"]),
        property_names(&doc, person),
        "/register 409 person"
    );

    let recognised = app.verify(&photos[1]).await;
    assert_eq!(recognised.status(), 200);
    let body: Value = recognised.json().await.unwrap();
    let schema = json_schema(&doc, "/verify", "post", 200);
    assert_eq!(keys(&body), property_names(&doc, schema), "/verify 200");
    let face_schema = &resolve(&doc, schema)["properties"]["faces"]["items"];
    assert_eq!(
        keys(&body["faces"][0]),
        property_names(&doc, face_schema),
        "/verify 200 faces"
    );
    let attendance_schema = &resolve(&doc, schema)["properties"]["attendance"];
    let event = attendance_schema["oneOf"]
        .as_array()
        .and_then(|alternatives| alternatives.iter().find(|s| s["type"] != "null"))
        .unwrap_or(attendance_schema);
    assert_eq!(
        keys(&body["attendance"]),
        property_names(&doc, event),
        "/verify 200 attendance"
    );

    let form = reqwest::multipart::Form::new().part(
        "image",
        crate::helpers::image_part(crate::helpers::fixture(&photos[1]), "frame.jpg"),
    );
    let detected = app.post_form("/detect", form).await;
    assert_eq!(detected.status(), 200);
    let body: Value = detected.json().await.unwrap();
    let schema = json_schema(&doc, "/detect", "post", 200);
    assert_eq!(keys(&body), property_names(&doc, schema), "/detect");
    let face_schema = &resolve(&doc, schema)["properties"]["faces"]["items"];
    assert_eq!(
        keys(&body["faces"][0]),
        property_names(&doc, face_schema),
        "/detect faces"
    );

    let log: Value = app.get_json("/attendance").await;
    let schema = &json_schema(&doc, "/attendance", "get", 200)["items"];
    assert_eq!(keys(&log[0]), property_names(&doc, schema), "/attendance");
}

mod sqlite {
    use crate::helpers::{spawn_app, Backend};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_document_is_openapi_3() {
        super::the_document_is_openapi_3(spawn_app(Backend::Sqlite).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_route_of_the_router_is_documented() {
        super::every_route_of_the_router_is_documented(spawn_app(Backend::Sqlite).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_contract_is_in_the_document() {
        super::the_contract_is_in_the_document(spawn_app(Backend::Sqlite).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn documented_bodies_match_the_answers() {
        super::documented_bodies_match_the_answers(spawn_app(Backend::Sqlite).await).await
    }
}
