//! The server runs photos through `FacePipeline`'s one road: a box the detector gives wholly
//! outside the frame is dropped before anything is embedded, so each face `/verify` answers
//! carries the embedding of its own crop.
//!
//! MTCNN seldom gives such a box on a real photo, so a second server over the test app's
//! database and photos runs a pipeline that also "detects" one in every frame (the pipeline's
//! test-facing `with_extra_detections`); everything after the detector is the server's code.

use crate::helpers::{fixture, image_part, pipeline, tony_blair, Form, TestApp};
use rollcall::app::Application;
use rollcall::config::{Overrides, Settings};
use rollcall_vision::models::{EmbedderChoice, ModelConfig};
use rollcall_vision::{Detection, FacePipeline, PipelineConfig};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// A box wholly outside any frame, far larger than a face of the photos used: kept, it would
/// sort first and be verified with the real face's embedding.
fn outside_the_frame() -> Detection {
    Detection {
        bbox: [-3000.0, -3000.0, -1000.0, -1000.0],
        probability: 0.999,
        landmarks: [[-2000.0, -2000.0]; 5],
    }
}

/// The face-api pipeline of the other tests, plus the box outside the frame.
fn pipeline_with_outside_box() -> Arc<FacePipeline> {
    static PIPELINE: OnceLock<Arc<FacePipeline>> = OnceLock::new();
    PIPELINE
        .get_or_init(|| {
            let config = PipelineConfig::new(ModelConfig {
                models_dir: crate::helpers::models_dir(),
                embedder: EmbedderChoice::FaceApi,
                facenet_weights: None,
                fetch_missing: false,
            });
            let pipeline = FacePipeline::load(&config).expect("loading the face pipeline");
            Arc::new(pipeline.with_extra_detections(vec![outside_the_frame()]))
        })
        .clone()
}

/// A second server on `app`'s database and photo directory with that pipeline, built as
/// `rollcall serve` builds one; its address.
async fn serve_with_outside_box(app: &TestApp) -> String {
    let settings = Settings::resolve(Overrides {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(app.data_dir.path().to_owned()),
        database_url: Some(app.database_url.clone()),
        models: Some(crate::helpers::models_dir()),
        embedder: Some(EmbedderChoice::FaceApi),
        ..Overrides::default()
    })
    .expect("settings");
    let server = Application::build_with_pipeline(&settings, pipeline_with_outside_box())
        .await
        .expect("building the second server");
    let address = format!("http://{}", server.address());
    tokio::spawn(server.run_until(std::future::pending()));
    address
}

async fn post_photo(app: &TestApp, address: &str, path: &str, photo: &str) -> (u16, Value) {
    let form = Form::new()
        .text("kiosk", "front door")
        .part("image", image_part(fixture(photo), "probe.jpg"));
    let r = app
        .client
        .post(format!("{address}{path}"))
        .multipart(form)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON body"))
}

async fn a_box_outside_the_frame_leaves_each_face_its_own_embedding(app: TestApp) {
    assert_eq!(
        pipeline().model_id(),
        pipeline_with_outside_box().model_id()
    );
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    let probe = &photos[1];
    let (status, plain) = post_photo(&app, &app.address, "/detect", probe).await;
    assert_eq!(status, 200, "{plain}");
    let faces = plain["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 1, "{plain}");
    let real_box = &faces[0]["box"];

    let other = serve_with_outside_box(&app).await;
    let (status, detected) = post_photo(&app, &other, "/detect", probe).await;
    assert_eq!(status, 200, "{detected}");
    assert_eq!(
        detected["faces"], plain["faces"],
        "the outside box is dropped"
    );

    let (status, v) = post_photo(&app, &other, "/verify", probe).await;
    assert_eq!(status, 200, "{v}");
    let faces = v["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 1, "{v}");
    assert_eq!(&faces[0]["box"], real_box, "the face is the real one: {v}");
    assert_eq!(faces[0]["match"]["id"].as_i64(), Some(id), "{v}");
    assert_eq!(faces[0]["checked_in"], true, "{v}");
    assert_eq!(v["id"].as_i64(), Some(id), "{v}");
}

crate::on_both_backends!(a_box_outside_the_frame_leaves_each_face_its_own_embedding);
