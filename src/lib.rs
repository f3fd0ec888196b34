//! Stride
