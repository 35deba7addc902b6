//! `uniflow apply`, `uniflow destroy` and `uniflow force-unlock`: deploying
//! the planned stack through CloudFormation, with its state and lock in the
//! artifacts bucket.

pub mod functions;
