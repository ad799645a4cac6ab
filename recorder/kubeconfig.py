"""The cluster to record: the user's kubeconfig in, a kubeconfig for the proxy out.

Credentials are whatever the official ``kubernetes`` client's loader
understands (CA and client certificates, bearer tokens and token files, exec
credential plugins, in-cluster service accounts), so the recorder reaches
every cluster ``kubectl`` and the operators themselves reach.  The operator
is given a kubeconfig that points at the proxy over HTTPS on loopback (the
proxy's per-run CA inside) with a random per-run token; its real credentials
never leave the recorder and are never stored.  The loader writes a
kubeconfig's client key, certificate and CA (``*-data``) to files: given a
``scratch`` directory (the recorder's private one, see ``recorder.rundir``)
they go there and are removed as soon as they are loaded into memory.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import ssl
import threading
from pathlib import Path
from typing import Any

import yaml

from replay_tui.engine.schema import RecordingError


class KubeconfigError(RecordingError):
    """The kubeconfig cannot be used; the message says why, in one line."""


class Upstream:
    """The real API server: its URL, TLS settings and the Authorization header to send."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None, server_hostname: str | None = None,
                 proxy: str | None = None, context: str = "", namespace: str = "default",
                 configuration: Any = None, scratch: Path | None = None):
        self.url = url.rstrip("/")
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.proxy = proxy
        self.context = context
        self.namespace = namespace
        self._configuration = configuration
        self._scratch = scratch
        self._lock = threading.Lock()
        self.authorization: str | None = None
        self.refresh_auth()

    def refresh_auth(self) -> None:
        """Re-read the credentials (runs exec plugins when a token expired: call it off the event loop)."""
        cfg = self._configuration
        if cfg is None:
            return
        with self._lock:
            header = None
            auth = cfg.auth_settings() if hasattr(cfg, "auth_settings") else {}
            for setting in auth.values():
                if setting.get("in") == "header" and setting.get("key", "").lower() == "authorization":
                    header = setting.get("value")
            if not header and getattr(cfg, "api_key", None):
                header = cfg.get_api_key_with_prefix("authorization")
            if not header and getattr(cfg, "username", None):
                header = cfg.get_basic_auth_token()
            self.authorization = header or None
            if self._scratch is not None:  # an exec plugin may have handed out a new key: in memory only
                shutil.rmtree(self._scratch, ignore_errors=True)


def _candidates(path: str | None) -> list[str]:
    if path:
        return [path]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [os.path.expanduser("~/.kube/config")]


def _check_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise KubeconfigError(f"kubeconfig {path}: no such file")
    if p.is_dir():
        raise KubeconfigError(f"kubeconfig {path}: is a directory")
    try:
        text = p.read_text()
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(f"kubeconfig {path}: not valid YAML{where}") from None
    if not isinstance(data, dict) or not data.get("clusters") or not data.get("contexts"):
        raise KubeconfigError(f"kubeconfig {path}: not a kubeconfig (no clusters or contexts)")
    return data


def load_upstream(kubeconfig: str | None = None, context: str | None = None,
                  scratch: Path | None = None) -> Upstream:
    """The cluster of a kubeconfig context (or the in-cluster service account).

    ``scratch``: where the loader may write the cluster's key, certificate and CA; it is removed
    once they are in memory (and after each credential refresh)."""
    from kubernetes import client
    from kubernetes import config as kconfig

    files = _candidates(kubeconfig)
    existing = [f for f in files if os.path.exists(f)]
    cfg = client.Configuration()
    if not existing and kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            kconfig.load_incluster_config(client_configuration=cfg)
        except kconfig.ConfigException as exc:
            raise KubeconfigError(f"in-cluster configuration: {exc}") from None
        return Upstream(cfg.host, ssl_context=_ssl_context(cfg), context="in-cluster",
                        namespace=_incluster_namespace(), configuration=cfg)
    if not existing:
        hint = "" if kubeconfig else " (use --kubeconfig)"
        raise KubeconfigError(f"kubeconfig {files[0]}: no such file{hint}")
    data = _check_file(existing[0]) if len(existing) == 1 else {}
    names = [c.get("name") for c in data.get("contexts") or [] if isinstance(c, dict)]
    chosen = context or data.get("current-context")
    if data and not chosen:
        raise KubeconfigError(f"kubeconfig {existing[0]}: no current-context (use --context)")
    if data and chosen not in names:
        raise KubeconfigError(f"kubeconfig {existing[0]}: context {chosen!r} not found "
                              f"(available: {', '.join(str(n) for n in names) or 'none'})")
    target = existing[0] if len(existing) == 1 else os.pathsep.join(existing)
    try:
        kconfig.load_kube_config(config_file=target, context=context, client_configuration=cfg,
                                 persist_config=False, temp_file_path=str(scratch) if scratch else None)
    except Exception as exc:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise KubeconfigError(f"kubeconfig {target}: {text}") from None
    namespace = "default"
    for ctx in data.get("contexts") or []:
        if isinstance(ctx, dict) and ctx.get("name") == chosen:
            namespace = (ctx.get("context") or {}).get("namespace") or "default"
    if not cfg.host or not cfg.host.startswith(("http://", "https://")):
        raise KubeconfigError(f"kubeconfig {target}: the cluster has no usable server URL ({cfg.host!r})")
    try:
        ssl_context = _ssl_context(cfg)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)  # loaded: the key lives in memory only
    return Upstream(cfg.host, ssl_context=ssl_context,
                    server_hostname=getattr(cfg, "tls_server_name", None) or None,
                    proxy=getattr(cfg, "proxy", None) or None, context=str(chosen or ""),
                    namespace=namespace, configuration=cfg, scratch=scratch)


def _incluster_namespace() -> str:
    try:
        return Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
    except OSError:
        return "default"


def _ssl_context(cfg: Any) -> ssl.SSLContext | None:
    if not str(cfg.host).startswith("https://"):
        return None
    try:
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise KubeconfigError(f"kubeconfig: cannot load the TLS certificates ({exc})") from None
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_proxy_kubeconfig(path: str | Path, url: str, token: str, *, namespace: str = "default",
                           ca_pem: bytes | None = None) -> Path:
    """A kubeconfig (mode 0600) that sends the operator to the proxy; ``ca_pem`` is the proxy's per-run CA."""
    path = Path(path)
    cluster: dict[str, str] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    text = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "replay-tui",
        "clusters": [{"name": "replay-tui", "cluster": cluster}],
        "users": [{"name": "replay-tui", "user": {"token": token}}],
        "contexts": [{"name": "replay-tui",
                      "context": {"cluster": "replay-tui", "user": "replay-tui", "namespace": namespace}}],
    }, sort_keys=False)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with looser permissions: it holds a token
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
