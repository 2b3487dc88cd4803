//! `rollcall serve` in a child process, for check-ins made the way a kiosk makes them.

use super::{rollcall, runtime, DataDir};
use crate::shared::models_dir;
use serde_json::Value;
use std::path::Path;

/// A `rollcall serve` on a free port, stopped when dropped.
pub struct Server {
    child: std::process::Child,
    addr: String,
}

impl Server {
    pub fn start(data: &DataDir) -> Server {
        use std::io::{BufRead, BufReader};
        let mut child = rollcall()
            .arg("--data-dir")
            .arg(data.path())
            .arg("--models")
            .arg(models_dir())
            .args(["--embedder", "face-api", "serve", "--bind", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting rollcall serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut seen = String::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("rollcall serve stopped before listening:\n{seen}");
            };
            if let Some((_, rest)) = line.split_once("listening on http://") {
                break rest.split('/').next().expect("an address").to_owned();
            }
            seen.push_str(&line);
            seen.push('\n');
        };
        // Keep reading so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /verify` from a kiosk holding `key`; the JSON answer.
    pub fn verify(&self, photo: &Path, key: &str) -> Value {
        let bytes = std::fs::read(photo).expect("reading the photo");
        let url = format!("http://{}/verify", self.addr);
        runtime().block_on(async {
            let form = reqwest::multipart::Form::new()
                .part(
                    "image",
                    reqwest::multipart::Part::bytes(bytes).file_name("frame.jpg"),
                )
                // Ignored: the check-in is recorded under the key's name.
                .text("kiosk", "the form's kiosk");
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .multipart(form)
                .send()
                .await
                .expect("POST /verify")
                .json()
                .await
                .expect("a JSON answer")
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
