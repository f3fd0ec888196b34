pub mod condition;
pub mod recordio;
pub mod types;
