"""Drafts: issues composed in the browser, stored in the database with every save kept.

A draft holds the same document as a content file (newsletter, number, year, date,
language, title, ..., blocks, contact, about), as JSON. `store` saves it (every save
a revision, autosaves merged, a version number against lost updates), `document`
validates it with the content model of the YAML path, `diff` says what changed
between two revisions. This package is library code: it imports nothing of the web
app or the CLI.
"""
