"""The subscriber store: a leaf package that never imports `mailer`."""
