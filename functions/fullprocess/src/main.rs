//! The full-process Lambda function, on the EventBridge schedule that replaces the cron job
//! (every ten minutes): ingests every new source file; bootstraps when nothing is deployed;
//! otherwise checks the deployed model for drift on the new rows and retrains, rescores,
//! redeploys, and reruns diagnostics and reporting when it drifted. With nothing new it writes
//! nothing. Accepts the scheduled-event envelope or any plain JSON input (a rule's constant
//! `Input`, `{}`, `null`). The pipeline is built once per cold start; the handler is in
//! `handler.rs`.

mod handler;

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(handler::handle)
}
