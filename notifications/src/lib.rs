//! Email, signed links and outbound webhooks (to be built in issue 4 and 5).
