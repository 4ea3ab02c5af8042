//! Fixtures the in-process tests share: an app behind a real HTTP server (`app`), engines
//! on a store (`engine`), records in older formats (`old_formats`) and redis-servers the
//! tests start and own (`redis_fixture`). tests/recovery mounts the files it needs itself.

pub mod app;
pub mod engine;
pub mod old_formats;
pub mod redis_fixture;
