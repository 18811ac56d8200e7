//! PostgreSQL store and queue for Chronos (issue 3; an empty shell until then).
