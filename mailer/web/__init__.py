"""The web app: editor and operator pages behind a login, and public subscriber pages."""
