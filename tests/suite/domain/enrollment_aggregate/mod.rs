//! The enrollment aggregate (가입) as the business tells it: given what happened, when a
//! customer (or a timer, or the payment gateway) asks for something, then these events
//! happen, or this refusal. One test per arrow of the lifecycle, every illegal
//! transition, the event contract (names, JSON) and the snapshot codec.

mod events;
mod fixtures;
mod illegal;
mod lifecycle;
mod snapshots;
