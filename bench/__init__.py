"""Benchmark of the exporter against the ARM simulator: ``python -m bench`` (``make bench``).

Phases, each in its own processes so no two parts share a GIL:

* ``cycles``: the exporter's Poller + ArmClient against a simulator subprocess with injected latency,
  one cold and two steady cycles; ARM reads counted from the simulator's request log;
* ``budget``: the client-side read budget and a 429 ``Retry-After`` pause, checked in the request log;
* ``scrape``: ``/metrics`` latency of pre-rendered synthetic snapshots (1k/10k/100k series) served by
  the exporter's HTTP server in a subprocess, next to prometheus-client's ``generate_latest``;
* ``memory``: peak RSS (VmHWM) of the real exporter process (``python -m exporter``) polling the big world.
"""
