//! What the fuzz targets share: the `account` example's RPC operations (real
//! component types for the codec and WAVE targets) and a node to send HTTP
//! requests to, each made once per process.

use std::sync::OnceLock;

use pigeon_node::pigeon_host::{Host, HostConfig, Operation};
use pigeon_node::{Node, NodeConfig};

/// The operations the `account` example exports.
pub fn operations() -> &'static [Operation] {
    static OPERATIONS: OnceLock<Vec<Operation>> = OnceLock::new();
    OPERATIONS.get_or_init(|| {
        let host = Host::new(HostConfig { max_instances: 4, ..HostConfig::default() }).expect("a host");
        let component = host.load(pigeon_test_artifacts::BANK_ACCOUNT_WASM, &[]).expect("the account example loads");
        component.rpc().operations.clone()
    })
}

/// A runtime and a node with the example actors, and its API's router.
pub struct Api {
    pub runtime: tokio::runtime::Runtime,
    pub router: axum::Router,
    pub token: String,
    _dir: tempfile::TempDir,
}

/// The node the HTTP target drives (loopback, so reads are open).
pub fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
        let dir = tempfile::tempdir().expect("a temp dir");
        let token = "fuzz-token".to_string();
        let router = runtime.block_on(async {
            let mut config = NodeConfig::new(dir.path());
            config.host.max_instances = 16;
            let node = Node::start(config).await.expect("a node");
            let limits = pigeon_node::pigeon_store::TypeLimits::default();
            node.deploy("counter", pigeon_test_artifacts::COUNTER_WASM.to_vec(), limits.clone(), Vec::new())
                .await
                .expect("counter deploys");
            node.deploy("account", pigeon_test_artifacts::BANK_ACCOUNT_WASM.to_vec(), limits, Vec::new())
                .await
                .expect("account deploys");
            let (_closing, closing) = tokio::sync::watch::channel(false);
            std::mem::forget(_closing);
            pigeon_api::router(node, token.clone(), "127.0.0.1:7070".parse().expect("an address"), closing)
        });
        Api { runtime, router, token, _dir: dir }
    })
}
