#![allow(unused_variables)]
//! PLACEHOLDER until the backend lands.
use super::*;
pub struct LocalRuntime;
impl LocalRuntime {
    pub fn new(cfg: LocalConfig) -> Self {
        Self
    }
}

#[async_trait::async_trait]
impl super::RuntimeBackend for LocalRuntime {
    async fn start(&self, spec: InstanceSpec) -> Result<(), RuntimeError> {
        unimplemented!()
    }
    async fn stop(&self, instance_id: InstanceId) -> Result<(), RuntimeError> {
        unimplemented!()
    }
    async fn logs(&self, instance_id: InstanceId, tail_lines: usize) -> Result<String, RuntimeError> {
        unimplemented!()
    }
    async fn in_flight(&self) -> Result<usize, RuntimeError> {
        unimplemented!()
    }
    async fn list(&self) -> Result<Vec<RuntimeObject>, RuntimeError> {
        unimplemented!()
    }
    fn watch(&self) -> BoxStream<'static, InstanceEvent> {
        unimplemented!()
    }
    async fn shutdown(&self, grace: Duration) {
        unimplemented!()
    }
}
