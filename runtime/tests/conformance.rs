//! The behaviour suite (`uniflow_runtime::conformance`) on the embedded
//! backend. The AWS backend runs the same suite against moto.

use std::sync::Mutex;

use uniflow_runtime::conformance::{self, Backend, Stored};
use uniflow_runtime::embedded::{Log, MemoryDedupe};
use uniflow_schemas::Bundle;

struct Embedded {
    dir: tempfile::TempDir,
    current: Mutex<Option<Log>>,
}

impl Backend for Embedded {
    type Sink = Log;
    type Dedupe = MemoryDedupe;

    async fn fresh(&self) -> (Log, MemoryDedupe) {
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let log = Log::open(&self.dir.path().join(format!("log-{n}"))).unwrap();
        *self.current.lock().unwrap() = Some(log.clone());
        (log, MemoryDedupe::default())
    }

    async fn stored(&self) -> Vec<Stored> {
        let log = self.current.lock().unwrap().clone().unwrap();
        let mut reader = log.reader(0).unwrap();
        let mut out = Vec::new();
        while let Some((r, _)) = reader.next_record().unwrap() {
            out.push(Stored {
                kind: r.kind,
                message_id: r.message_id,
                partition_key: Some(r.partition_key),
                json: serde_json::from_slice(&r.json).unwrap(),
            });
        }
        out
    }
}

#[tokio::test]
async fn the_embedded_backend_passes_the_behaviour_suite() {
    let (checked, artifacts) = uniflow_compiler::build(conformance::PROJECT);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    let bundle = Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap();
    let backend = Embedded {
        dir: tempfile::tempdir().unwrap(),
        current: Mutex::new(None),
    };
    conformance::run(&backend, &bundle).await;
}
