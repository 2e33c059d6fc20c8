"""The `mailer` command: a thin layer over the library, one module per area."""
