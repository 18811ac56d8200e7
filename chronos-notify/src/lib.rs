//! Notifiers for Chronos: SMTP email and webhooks (issue 5; an empty shell until then).
