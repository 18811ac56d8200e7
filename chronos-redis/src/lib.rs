//! Redis queue, rate limiter and token revocation list for Chronos (issue 4; an empty shell until then).
