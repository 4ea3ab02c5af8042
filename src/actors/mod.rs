//! Actix actors: one supervised `EnrollmentActor` per enrollment, its registry, and the document, payment, notification and MyPage services (to come).
