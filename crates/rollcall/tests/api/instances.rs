//! Two servers over one database: their check-in locks are separate (each process has its
//! own), so only the database keeps a person checked in once per cooldown when both see them
//! at the same moment.

use crate::helpers::{tony_blair, TestApp, TestConfig};
use rollcall::attendance::Attendance;
use rollcall::store::CheckIn;
use std::sync::Arc;

/// Rounds of simultaneous check-ins; removing the database lock fails this many reliably.
const ROUNDS: usize = 20;

async fn simultaneous_check_ins_on_two_servers_record_one_event(app: TestApp) {
    let id = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let config = TestConfig::default();
    // Each server's check-in desk: the attendance rules over a pool of its own.
    let pools = [app.another_pool().await, app.another_pool().await];
    let servers = pools
        .clone()
        .map(|pool| Arc::new(Attendance::new(pool, config.cooldown)));
    let model = rollcall_vision::FacePipeline::model_id(&crate::helpers::pipeline()).to_owned();
    for round in 0..ROUNDS {
        // A fresh cooldown for each round.
        app.execute("DELETE FROM attendance").await;
        let start = Arc::new(tokio::sync::Barrier::new(servers.len()));
        let tasks: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(i, server)| {
                let (server, start) = (server.clone(), start.clone());
                let kiosk = format!("kiosk {i}");
                let model = model.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    server.check_in(id, 0.99, Some(&kiosk), &model).await
                })
            })
            .collect();
        let mut recorded = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(CheckIn::Recorded(_)) => recorded += 1,
                Ok(CheckIn::AlreadyIn(_)) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        let events = app.store.attendance(Default::default()).await.unwrap();
        assert_eq!(
            (recorded, events.len()),
            (1, 1),
            "round {round}: one of the two servers checks the person in"
        );
    }
    for pool in pools {
        pool.close().await;
    }
}

crate::on_both_backends!(simultaneous_check_ins_on_two_servers_record_one_event);
