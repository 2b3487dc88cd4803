//! The multipart form: arbitrary bodies with a fixed boundary through axum's `Multipart`
//! extractor under the server's body limit, `http::form::Form::read`, and the field parsing the
//! upload handlers do (`/register`, `/verify`, `/detect` and `/users/{id}/faces`).
//!
//! What must hold for every body:
//! - no panic and no hang (libFuzzer's -timeout catches a stalled parser);
//! - a refusal is a client error, 400 or 413 and never 5xx, with the JSON `{error, message}`
//!   body every error answer has;
//! - a body within the limit is never refused as too large;
//! - what the form hands on is what the handlers rely on: at least one image, none empty.

#![no_main]

use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use libfuzzer_sys::fuzz_target;
use rollcall::domain::{Kiosk, PersonName};
use rollcall::http::error::ApiError;
use rollcall::http::form::Form;
use std::sync::OnceLock;
use tower::ServiceExt;

/// Seeds and the dictionary use this boundary.
const BOUNDARY: &str = "rcfuzz";
/// Small enough for the fuzzer to cross (the server's default is 10 MiB; the code path is the
/// same).
const LIMIT: usize = 4 * 1024;

/// The upload routes' own reading of the form, in the order the handlers do it. The handlers
/// call these same functions; this list must follow them when they change.
fn handlers(form: &Form) -> Vec<Result<(), ApiError>> {
    let register = || -> Result<(), ApiError> {
        PersonName::parse(form.text("first_name")?, form.text("last_name")?)?;
        check_images(form.images()?);
        Ok(())
    };
    let verify = || -> Result<(), ApiError> {
        check_images(vec![form.image()?]);
        Kiosk::parse(form.optional_text("kiosk").unwrap_or_default())?;
        Ok(())
    };
    let one_image = || -> Result<(), ApiError> {
        check_images(vec![form.image()?]);
        Ok(())
    };
    vec![register(), verify(), one_image()]
}

fn check_images(images: Vec<std::sync::Arc<[u8]>>) {
    assert!(!images.is_empty(), "the form handed on no image");
    assert!(
        images.iter().all(|i| !i.is_empty()),
        "the form handed on an empty image"
    );
}

async fn upload(multipart: Result<Multipart, MultipartRejection>) -> Response {
    let form = match Form::read(multipart, LIMIT).await {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    for result in handlers(&form) {
        if let Err(e) = result {
            let response = e.into_response();
            assert_client_error(&response);
        }
    }
    StatusCode::OK.into_response()
}

fn assert_client_error(response: &Response) {
    let status = response.status();
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
        "a form was refused with {status}"
    );
}

fn app() -> Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| {
        Router::new()
            .route("/", post(upload))
            .layer(DefaultBodyLimit::max(LIMIT))
    })
    .clone()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|body: &[u8]| {
    let request = Request::post("/")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body.to_vec()))
        .expect("a valid request");
    let response = runtime().block_on(async {
        let response = app().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("an in-memory body");
        (status, bytes)
    });
    let (status, bytes) = response;
    if status == StatusCode::OK {
        return;
    }
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
        "a form was refused with {status}"
    );
    if body.len() <= LIMIT {
        assert_ne!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "a {}-byte body was refused as over {LIMIT}",
            body.len()
        );
    }
    let json: serde_json::Value = serde_json::from_slice(&bytes).expect("an error answer is JSON");
    assert!(
        json["error"].is_string() && json["message"].is_string(),
        "not the error shape: {json}"
    );
});
