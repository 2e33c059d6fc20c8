"""When an issue goes out: waves (wall time -> UTC per zone), plan (what commands and
the web app call), runner (starts a wave on time), process (the running scheduler),
locks (one scheduler per database)."""
