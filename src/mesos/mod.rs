pub mod condition;
pub mod types;
