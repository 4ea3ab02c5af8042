//! The warp HTTP gateway: routes, auth, limits, problem+json errors, metrics and health (to come).
