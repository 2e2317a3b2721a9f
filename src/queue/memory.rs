#![allow(unused_variables)]
//! PLACEHOLDER until the backend lands.
use super::*;
#[derive(Clone)]
pub struct MemoryQueue;
impl MemoryQueue {
    pub fn new(max: usize) -> Self {
        Self
    }
}

#[async_trait::async_trait]
impl super::ProducerBackend for MemoryQueue {
    async fn publish(&self, payload: Vec<u8>) -> Result<(), QueueError> {
        unimplemented!()
    }
    async fn depth(&self) -> Result<u64, QueueError> {
        unimplemented!()
    }
}

#[async_trait::async_trait]
impl super::ConsumerBackend for MemoryQueue {
    async fn receive(&self) -> Result<RawDelivery, QueueError> {
        unimplemented!()
    }
}
