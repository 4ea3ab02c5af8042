//! Store traits and their memory (embedded) and Redis (durable) backends (to come).
