"""The newsletter service: authoring, rendering, delivery, scheduling and the web app."""
