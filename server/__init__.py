"""Re-entering the past: a Kubernetes API server that answers from a recording, forks, restores.

* ``resources``, ``selectors``, ``patches``, ``render``, ``discovery``: the pieces of the API
  (resource types, label and field selectors, merge/JSON/strategic patches, Tables and
  partial metadata, discovery and OpenAPI documents);
* ``apiserver``: the one implementation of API-server semantics in the product (an in-memory
  store with uid, resourceVersion, generation, 409 on a stale resourceVersion, the status
  subresource, finalizers, selectors, watches with resourceVersion and bookmarks);
* ``http``: that store over HTTP(S), with the recording proxy's per-run CA and token;
* ``replay``: the store seeded from a recording at a position, and the position controller
  (``Replay.seek``/``play``) that moves it and streams the recorded events to open watches;
* ``fork``: a writable copy of the state at a position, the outside world replayed into it;
* ``restore``: the state at a position created in a real cluster.

The test emulator is this server seeded empty.  Nothing here imports the TUI or Textual,
and the engine never imports this package.
"""
