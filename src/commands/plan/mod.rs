//! `uniflow plan`: what applying the config would change, break and cost,
//! before anything is touched.

pub mod files;
pub mod model;
pub mod render;
pub mod template;
