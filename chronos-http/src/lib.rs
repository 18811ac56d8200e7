//! The Chronos reference REST service (issue 6; an empty shell until then).
