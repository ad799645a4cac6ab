"""The resource types a server serves: group, version, plural, kind, scope, subresources.

Built-in kinds a cluster always has are known here; the others come from a recording
(discovery answers it holds, the objects it saw) or from CustomResourceDefinitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    """A resource the server serves."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has a status subresource
    short_names: tuple[str, ...] = ()
    custom: bool = False  # a custom resource (its list items carry kind/apiVersion)
    singular_name: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.singular_name or self.kind.lower()

    @property
    def qualified(self) -> str:
        """``plural.group`` as kube-apiserver names a resource in its messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> tuple[str, str]:
        return self.group, self.plural


BUILTIN = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status=True, short_names=("ns",)),
    ResourceType("", "v1", "pods", "Pod", status=True, short_names=("po",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "services", "Service", status=True, short_names=("svc",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType("", "v1", "events", "Event", short_names=("ev",)),
    ResourceType("apps", "v1", "deployments", "Deployment", status=True, short_names=("deploy",)),
    ResourceType("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                 namespaced=False, status=True, short_names=("crd",)),
)

# Kinds that exist in every cluster, beyond those served by default: what a recording's objects
# of these kinds are (plural, scope, status subresource), when it holds no discovery answer.
KNOWN = {(rt.group, rt.kind): rt for rt in (
    *BUILTIN,
    ResourceType("", "v1", "nodes", "Node", namespaced=False, status=True, short_names=("no",)),
    ResourceType("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", status=True, short_names=("pvc",)),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False, status=True,
                 short_names=("pv",)),
    ResourceType("", "v1", "replicationcontrollers", "ReplicationController", status=True, short_names=("rc",)),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", status=True, short_names=("sts",)),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", status=True, short_names=("ds",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", status=True, short_names=("rs",)),
    ResourceType("batch", "v1", "jobs", "Job", status=True),
    ResourceType("batch", "v1", "cronjobs", "CronJob", status=True, short_names=("cj",)),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", status=True, short_names=("pdb",)),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", status=True, short_names=("ing",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", status=True,
                 short_names=("hpa",)),
)}

# Namespaces a cluster makes for itself: never restored, never forked into.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


def plural_of(kind: str) -> str:
    """kube-apiserver's default plural of a kind (what a CRD without discovery would most likely use)."""
    low = kind.lower()
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return low + "es"
    if low.endswith("y") and low[-2:-1] not in ("a", "e", "i", "o", "u"):
        return low[:-1] + "ies"
    return low + "s"


class TypeRegistry:
    """Resource types by URL (group, version, plural) and by kind; one entry per (group, plural)."""

    def __init__(self, types: Iterable[ResourceType] = ()):
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_plural: dict[tuple[str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        for rt in types:
            self.add(rt)

    def add(self, rt: ResourceType) -> ResourceType:
        """Serve ``rt`` (replacing what was served under its group and plural)."""
        old = self._by_plural.get(rt.key)
        if old is not None:
            self._by_path.pop((old.group, old.version, old.plural), None)
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_plural[rt.key] = rt
        self._by_kind[(rt.group, rt.kind)] = rt
        return rt

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_plural.values()))

    def __len__(self) -> int:
        return len(self._by_plural)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._by_plural

    def values(self) -> list[ResourceType]:
        return list(self._by_plural.values())

    def at(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type a URL names (its version must be the one served)."""
        return self._by_path.get((group, version, plural))

    def plural(self, group: str, plural: str) -> ResourceType:
        rt = self._by_plural.get((group, plural))
        if rt is None:
            raise KeyError(f"{plural}.{group} is not served" if group else f"{plural} is not served")
        return rt

    def kind(self, group: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, kind))

    def group_versions(self) -> dict[str, list[str]]:
        """group -> its versions (the core group is "")."""
        out: dict[str, list[str]] = {}
        for rt in self._by_plural.values():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out
