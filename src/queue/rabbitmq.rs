#![allow(unused_variables)]
//! PLACEHOLDER until the backend lands.
use super::*;
pub struct RabbitQueue;
impl RabbitQueue {
    pub async fn connect(cfg: &QueueConfig) -> Result<Self, QueueError> {
        unimplemented!()
    }
    pub fn producer(&self) -> RabbitQueue {
        RabbitQueue
    }
    pub async fn consumer(&self) -> Result<RabbitQueue, QueueError> {
        unimplemented!()
    }
}

#[async_trait::async_trait]
impl super::ProducerBackend for RabbitQueue {
    async fn publish(&self, payload: Vec<u8>) -> Result<(), QueueError> {
        unimplemented!()
    }
    async fn depth(&self) -> Result<u64, QueueError> {
        unimplemented!()
    }
}

#[async_trait::async_trait]
impl super::ConsumerBackend for RabbitQueue {
    async fn receive(&self) -> Result<RawDelivery, QueueError> {
        unimplemented!()
    }
}
