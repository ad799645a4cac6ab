"""A program on the official Python client, run under ``replay-tui record`` in the conformance suite.

It knows the cluster only through ``KUBECONFIG``: list with a resourceVersion, writes, a watch
from that resourceVersion with a server-side timeout (``watch.Watch().stream``), a stale update
that must fail with 409, a delete.  It prints one JSON line per request it makes.

    python client.py NAMESPACE
"""

import json
import sys

from kubernetes import client, config, watch


def say(**line: object) -> None:
    print(json.dumps(line), flush=True)


def main(namespace: str) -> int:
    config.load_kube_config()  # KUBECONFIG: the kubeconfig replay-tui record wrote
    core = client.CoreV1Api()
    core.create_namespace({"metadata": {"name": namespace}})
    say(request="create", what="namespace")
    listed = core.list_namespaced_config_map(namespace)
    start = listed.metadata.resource_version
    say(request="list", resource_version=start)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}, "data": {"n": "1"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}, "data": {"n": "2"}})
    core.patch_namespaced_config_map("a", namespace, {"data": {"n": "3"}})
    say(request="writes", count=3)
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=1)]
    say(request="watch", events=events)
    stale = first  # resourceVersion of the create: the patch made it stale
    stale.data = {"n": "stale"}
    try:
        core.replace_namespaced_config_map("a", namespace, stale)
        say(request="update", status=200)
    except client.ApiException as exc:
        say(request="update", status=exc.status)
    current = core.read_namespaced_config_map("a", namespace)
    say(request="get", data=current.data)
    core.delete_namespaced_config_map("b", namespace)
    say(request="delete")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
