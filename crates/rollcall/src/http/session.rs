//! Logging in and out: `POST /login`, `POST /logout`, `GET /me`, and `POST /setup` (the first
//! admin, from the link the server logs on a first start). The session lives in the
//! `rollcall_session` cookie: `HttpOnly` (no script reads it), `SameSite=Strict` (no other site
//! sends it), `Secure` when the server is reached over TLS, expiring with the session.

use super::access::{cookie, ClientAddress, SESSION_COOKIE};
use super::error::ApiError;
use super::openapi::ErrorBody;
use super::AppState;
use crate::audit::{Action, Actor, Entry, Target};
use crate::auth::Caller;
use crate::domain::{Password, Username};
use crate::service::Session;
use crate::store::AccountRecord;
use crate::view::{LoggedIn, MeJson};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

/// The body of `POST /login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// The body of `POST /setup`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetupBody {
    /// The token of the setup link (`/admin#setup=TOKEN`).
    pub token: String,
    pub username: String,
    /// 10 to 1024 characters.
    pub password: String,
}

/// A JSON body, or the error shape when it is not one.
pub fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(t)| t)
        .map_err(|e| ApiError::bad_request(format!("expected a JSON body: {}", e.body_text())))
}

fn session_cookie(state: &AppState, value: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
    );
    // Tokens are base64url: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn logged_in(state: &AppState, who: LoggedIn, session: &Session) -> Response {
    let cookie = session_cookie(state, &session.token, session.ttl.as_secs());
    ([(header::SET_COOKIE, cookie)], Json(who)).into_response()
}

#[utoipa::path(
    post,
    path = "/login",
    tag = "access",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in: sets the `rollcall_session` cookie", body = LoggedIn),
        (status = 400, description = "The body is not the JSON asked for", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong username or password (one message for both)", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many failures for the account or \
            from the address (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Extension(address): Extension<ClientAddress>,
    actor: Actor,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let attempt = state
        .accounts
        .login(&body.username, &body.password, &address.label())
        .await;
    match attempt {
        Ok((account, session)) => {
            record_as(&state, &account, &actor, Action::Login).await;
            Ok(logged_in(&state, account.into(), &session))
        }
        Err(e) => {
            let e = ApiError::from(e);
            // A database fault is no refusal of this person's credentials.
            if e.status().is_client_error() {
                let entry = Entry::new(&actor, Action::LoginFailed)
                    .target(Target::account(&body.username))
                    .detail(e.code.as_str());
                state.rollcall.audit(&entry).await;
            }
            Err(e)
        }
    }
}

/// Record `action` of `account` itself (its login, logout or setup), from the request's address.
async fn record_as(state: &AppState, account: &AccountRecord, request: &Actor, action: Action) {
    let who = Caller::Account {
        id: account.id,
        username: account.username.clone(),
        role: account.role,
    };
    let entry = Entry::new(&Actor::new(&who, request.address()), action)
        .target(Target::account(&account.username));
    state.rollcall.audit(&entry).await;
}

#[utoipa::path(
    post,
    path = "/logout",
    tag = "access",
    responses((status = 204, description = "The session is ended and its cookie cleared (also \
        when there was none)"))
)]
pub async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.accounts.logout(token).await?;
        // Only a session that was open ends: a stale cookie resolves to nobody.
        if let Caller::Account { username, .. } = &caller {
            let entry = Entry::new(&actor, Action::Logout).target(Target::account(username));
            state.rollcall.audit(&entry).await;
        }
    }
    let cleared = session_cookie(&state, "", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cleared)]).into_response())
}

#[utoipa::path(
    get,
    path = "/me",
    tag = "access",
    responses(
        (status = 200, description = "Who the server takes the caller for", body = MeJson),
        (status = 401, description = "The key sent is unknown, revoked or malformed", body = ErrorBody),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<MeJson> {
    Json(MeJson::new(&caller, state.anonymous_verify))
}

#[utoipa::path(
    post,
    path = "/setup",
    tag = "access",
    request_body = SetupBody,
    responses(
        (status = 200, description = "The first admin account is created and logged in", body = LoggedIn),
        (status = 400, description = "A username or password that is not acceptable", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token is wrong, already used, or an account exists", body = ErrorBody),
    )
)]
pub async fn setup(
    State(state): State<AppState>,
    actor: Actor,
    body: Result<Json<SetupBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    let (account, session) = state
        .accounts
        .setup(&body.token, &username, &password)
        .await?;
    record_as(&state, &account, &actor, Action::Setup).await;
    Ok(logged_in(&state, account.into(), &session))
}
