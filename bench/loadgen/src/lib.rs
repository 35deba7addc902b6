//! The ingest benchmark's load generator and its anchor (see
//! `bench/ingest.sh`):
//!
//! - `loadgen` sends pre-generated `POST /v1/batch` bodies over keep-alive
//!   HTTP/1.1 connections and reports throughput and latency as JSON;
//! - `bare` is a bare axum server that reads each body and answers
//!   `{"success":true}`, the upper bound an axum server on this machine
//!   reaches with the same requests.
//!
//! This library holds what both the binary and its tests need: the payloads
//! ([`payload`]) and the statistics ([`stats`]).

pub mod payload;
pub mod stats;
