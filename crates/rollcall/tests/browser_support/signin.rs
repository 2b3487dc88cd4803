//! The admin page's sign-in screens, its keys tab and kiosk pairing, as the browser test drives
//! them: each helper waits for what the page shows after the step.

use super::{wait_js, Server};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

pub async fn click(page: &Client, css: &str) {
    page.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Click the element `css` matches, finding it again when the page replaced it in between.
pub async fn click_current(page: &Client, css: &str) {
    for _ in 0..20 {
        let element = page
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.click().await {
            Ok(()) => return,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("click {css}: {e}"),
        }
    }
    panic!("{css} kept being replaced");
}

/// Type into the field `css`, replacing what it held.
pub async fn fill(page: &Client, css: &str, value: &str) {
    let input = page
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    input.clear().await.expect("clear");
    input.send_keys(value).await.expect("type");
}

/// The text of the notice in `container`, once there is one (callers empty the container before
/// the step whose answer they want, with `clear_notice`).
pub async fn notice_text(page: &Client, container: &str) -> String {
    let script = format!(
        "const n = document.querySelector('{container} .notice'); return n ? n.textContent : null;"
    );
    let text = wait_js(page, container, &script).await;
    text.as_str().unwrap_or_default().to_owned()
}

pub async fn clear_notice(page: &Client, container: &str) {
    page.execute(
        &format!("document.querySelector('{container}').replaceChildren();"),
        vec![],
    )
    .await
    .expect("clear the notice");
}

/// Fill and submit the login form (waiting for it first).
pub async fn submit_login(page: &Client, user: &str, password: &str) {
    wait_js(
        page,
        "the login screen",
        "return !document.querySelector('#login-form').hidden && !document.querySelector('#login-submit').disabled;",
    )
    .await;
    clear_notice(page, "#login-notice").await;
    fill(page, "#login-username", user).await;
    fill(page, "#login-password", password).await;
    click(page, "#login-submit").await;
}

/// Log in from the login screen and wait for the admin sections.
pub async fn log_in(page: &Client, user: &str, password: &str) {
    submit_login(page, user, password).await;
    let who = wait_signed_in(page).await;
    assert_eq!(who[0], json!(user), "signed in as {who}");
}

/// `[name, role]` shown once the admin sections are.
pub async fn wait_signed_in(page: &Client) -> Value {
    wait_js(
        page,
        "the admin sections",
        "const n = document.querySelector('#login-notice .notice-error'); \
         if (n) return ['refused', n.textContent]; \
         return document.querySelector('#app').hidden ? null : \
           [document.querySelector('#whoami-name').textContent, document.querySelector('#whoami-role').textContent];",
    )
    .await
}

pub async fn visible_tabs(page: &Client) -> Value {
    page.execute(
        "return [...document.querySelectorAll('.tab')].filter(t => !t.hidden).map(t => t.textContent);",
        vec![],
    )
    .await
    .expect("the tabs")
}

/// Log out; the login screen comes back, and stays after a reload (the session is gone).
pub async fn log_out(page: &Client) {
    clear_notice(page, "#login-notice").await;
    click(page, "#logout").await;
    let said = notice_text(page, "#login-notice").await;
    assert_eq!(said, "You are logged out.");
    page.refresh().await.expect("reload");
    wait_js(
        page,
        "the login screen after a reload",
        "return !document.querySelector('#login-form').hidden && document.querySelector('#app').hidden;",
    )
    .await;
}

/// "Pair a kiosk" on the admin page's keys tab: returns the pairing link it shows (once).
pub async fn pair_kiosk(admin: &Client, name: &str) -> String {
    open_keys(admin).await;
    fill(admin, "#pair-name", name).await;
    click(admin, "#pair-submit").await;
    let link = wait_js(
        admin,
        "the pairing link",
        "const v = document.querySelector('#pair-result .secret-value'); return v ? v.value : null;",
    )
    .await;
    key_row(admin, name).await;
    link.as_str().expect("a link").to_owned()
}

/// "Create a key" on the keys tab: returns the key it shows (once).
pub async fn create_key(admin: &Client, name: &str, scope: &str) -> String {
    open_keys(admin).await;
    fill(admin, "#key-name", name).await;
    admin
        .find(Locator::Css("#key-scope"))
        .await
        .expect("the scope")
        .select_by_value(scope)
        .await
        .expect("choose the scope");
    click(admin, "#key-submit").await;
    let key = wait_js(
        admin,
        "the new key",
        "const v = document.querySelector('#key-result .secret-value'); return v ? v.value : null;",
    )
    .await;
    key.as_str().expect("a key").to_owned()
}

/// Open the admin page's keys tab (the page may reload) and wait until it shows.
pub async fn open_keys(page: &Client) {
    let origin = page
        .execute("return location.origin;", vec![])
        .await
        .expect("origin");
    let url = format!("{}/admin#keys", origin.as_str().expect("an origin"));
    page.goto(&url).await.expect("the keys tab");
    wait_js(
        page,
        "the keys tab",
        "return !document.querySelector('#app').hidden && !document.querySelector('#panel-keys').hidden;",
    )
    .await;
}

/// `[scope, status]` of the key named `name` in the keys table, once it is listed.
pub async fn key_row(admin: &Client, name: &str) -> Value {
    let script = format!(
        "const r = [...document.querySelectorAll('#keys-table tbody tr')] \
           .find(tr => tr.cells[0].textContent === {}); \
         return r ? [r.cells[1].textContent, r.cells[4].textContent] : null;",
        serde_json::to_string(name).expect("a JSON string")
    );
    wait_js(admin, "the key in the table", &script).await
}

/// Revoke the key named `name` from the keys tab, through its confirmation.
pub async fn revoke_key(admin: &Client, name: &str) {
    open_keys(admin).await;
    assert_eq!(key_row(admin, name).await[1], json!("Active"));
    let button = format!(
        "//tr[td[1][text()={}]]//button",
        serde_json::to_string(name).expect("json")
    );
    admin
        .find(Locator::XPath(&button))
        .await
        .expect("the revoke button")
        .click()
        .await
        .expect("click revoke");
    wait_js(
        admin,
        "the confirmation",
        "return document.querySelector('#revoke-dialog').open;",
    )
    .await;
    click(admin, "#revoke-confirm").await;
    let script = format!(
        "const r = [...document.querySelectorAll('#keys-table tbody tr')] \
           .find(tr => tr.cells[0].textContent === {}); \
         return r && r.cells[4].textContent.startsWith('Revoked') ? r.cells[4].textContent : null;",
        serde_json::to_string(name).expect("a JSON string")
    );
    wait_js(admin, "the key revoked", &script).await;
}

/// Pair `kiosk` with a new verify key named `name` (made over HTTP) by opening its link.
pub async fn pair_by_link(kiosk: &Client, server: &Server, name: &str) {
    let key = server.create_key(name, "verify").await;
    kiosk
        .goto(&format!("{}/#pair={key}", server.url))
        .await
        .expect("open the pairing link");
    let script = format!(
        "return document.querySelector('#kiosk-name-value').textContent === {};",
        serde_json::to_string(name).expect("a JSON string")
    );
    wait_js(kiosk, "the kiosk's name", &script).await;
}

/// Wait for the "not paired" screen; returns what it says beneath the title.
pub async fn wait_unpaired(kiosk: &Client) -> String {
    let said = wait_js(
        kiosk,
        "the not-paired screen",
        "const u = document.querySelector('#unpaired'); \
         return !u.hidden && document.querySelector('#kiosk-main').hidden ? \
           [document.querySelector('#unpaired-title').textContent, document.querySelector('#unpaired-detail').textContent] : null;",
    )
    .await;
    assert_eq!(
        said[0],
        json!("This kiosk is not paired — ask an administrator")
    );
    said[1].as_str().unwrap_or_default().to_owned()
}
