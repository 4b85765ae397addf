//! A short chaos soak in the test suite, so the soak (`just soak`, 100
//! SIGKILLs) cannot rot: every kind of traffic at once, a few SIGKILLs at
//! random moments, and every invariant of `pigeon_tests::soak::verify`.

use std::time::Duration;

use pigeon_tests::soak::{self, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_under_sigkills_keeps_every_invariant() {
    let seed = rand::random();
    let report = soak::run(Config { duration: Duration::from_secs(30), kills: 4, clients: 6, seed }).await;
    eprintln!("{}", report.table());
    assert!(report.violations.is_empty(), "seed {seed}: {:#?}", report.violations);
    assert_eq!(report.restarts.len(), 4, "every kill happened");
    for (kind, checked) in &report.checked {
        assert!(*checked > 0, "the soak applied no {} at all", kind.name());
    }
}
