"""Routes: several pipelines in one node, each chosen by the called AE title, the calling AE
title and the sender's address, with its own configuration, key, spool and destination.

A routes file is JSON (paths relative to it)::

    {"routes": [
      {"name": "trial-a", "calledAE": "TRIAL_A", "callingAE": ["CT1", "CT2"],
       "hosts": ["10.0.0.0/24"], "configFile": "trial-a.json", "keyFile": "trial-a.key",
       "forward": "PACS_A@10.0.0.5:104"},
      {"name": "research", "calledAE": "RESEARCH", "profile": "basic",
       "options": ["retain-uids"], "pixels": "rules", "forwardFolder": "/data/research"}
    ]}

``pixels`` is the route's ``--pixels`` mode (``off``, ``rules``, ``flagged``, ``all``): it wins
over the command line's, which wins over the route configuration's ``pixels.mode``. The first
route that matches an association takes its images; an association no route
matches is refused. Each route spools under ``<spool>/<name>/``.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcmanon.errors import UsageError
from dcmanon.pixels import MODES

if TYPE_CHECKING:
    from dcmanon.config.loader import Config

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_KEYS = {"name", "calledAE", "callingAE", "hosts", "configFile", "keyFile", "profile",
         "options", "pixels", "forward", "forwardFolder", "forwardDicomweb"}


@dataclass(frozen=True)
class Route:
    """One pipeline of a node: which associations it takes, and what it does with them."""

    name: str
    called_ae: str | None = None
    """The called AE title it answers to (None: any)."""
    calling_ae: tuple[str, ...] = ()
    """Calling AE titles it takes (empty: any)."""
    hosts: tuple[Network, ...] = ()
    """Sender addresses it takes (empty: any)."""
    config_file: Path | None = None
    key_file: Path | None = None
    profile: str | None = None
    options: tuple[str, ...] = ()
    pixels: str | None = None
    """Burned-in text: ``off``, ``rules``, ``flagged`` or ``all`` (None: the command line's,
    else the configuration's)."""
    forward: str | None = None
    forward_folder: Path | None = None
    forward_dicomweb: str | None = None

    def matches(self, called: str, calling: str, address: str) -> bool:
        """Whether an association from ``calling`` at ``address`` to ``called`` is this
        route's.

        Examples
        --------
        >>> Route("a", called_ae="TRIAL_A").matches("TRIAL_A", "CT1", "10.0.0.7")
        True
        >>> Route("a", called_ae="TRIAL_A", calling_ae=("CT2",)).matches("TRIAL_A", "CT1", "::1")
        False
        """
        if self.called_ae is not None and called.strip() != self.called_ae:
            return False
        if self.calling_ae and calling.strip() not in self.calling_ae:
            return False
        if self.hosts:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                return False
            return any(ip in network for network in self.hosts)
        return True

    def config(self) -> Config:
        """This route's configuration, keyed with its key file (else ``$DCMANON_KEY``).

        Raises
        ------
        DcmanonError
            If the key file or the configuration cannot be used (the message says which):
            :class:`~dcmanon.errors.UsageError` or :class:`~dcmanon.errors.ConfigError`.
        """
        from dcmanon.config.loader import load_config, parse_config

        secret = None
        if self.key_file is not None:
            try:
                secret = self.key_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"route {self.name}: {self.key_file}: cannot read the key "
                                 f"file ({type(exc).__name__})") from None
            if not secret:
                raise UsageError(f"route {self.name}: {self.key_file}: the key file is empty")
        overrides: dict[str, Any] = {}
        if self.profile is not None:
            overrides["profile"] = self.profile
        if self.options:
            overrides["options"] = list(self.options)
        if self.config_file is None:
            overrides.setdefault("profile", "basic")
            return parse_config(overrides, source=f"route {self.name}", secret=secret)
        return load_config(self.config_file, secret=secret, overrides=overrides)


def load_routes(path: str | os.PathLike[str]) -> list[Route]:
    """Read a routes file.

    Raises
    ------
    UsageError
        If it cannot be read or is wrong; the message names the file and the JSON location.
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{source}: cannot read the routes file ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(f"{source}: not JSON ({type(exc).__name__})") from None
    items = data.get("routes") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise UsageError(f'{source}: give a list of routes: {{"routes": [...]}}')
    routes, names = [], set()
    for index, item in enumerate(items):
        where = f"{source}: routes[{index}]"
        route = _route(item, where, source.parent)
        if route.name in names:
            raise UsageError(f"{where}.name: {route.name!r} is used twice")
        names.add(route.name)
        routes.append(route)
    return routes


def _route(item: Any, where: str, folder: Path) -> Route:
    if not isinstance(item, dict):
        raise UsageError(f"{where}: a route is an object")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} "
                         f"(known: {', '.join(sorted(_KEYS))})")
    name = item.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise UsageError(f"{where}.name: a name of letters, digits, - and _ (it names the "
                         "route's spool folder)")
    if sum(key in item for key in ("forward", "forwardFolder", "forwardDicomweb")) != 1:
        raise UsageError(f"{where}: give one destination: forward, forwardFolder or "
                         "forwardDicomweb")

    def path(key: str) -> Path | None:
        value = item.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise UsageError(f"{where}.{key}: a path")
        return folder / value

    def strings(key: str) -> tuple[str, ...]:
        value = item.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where}.{key}: a string or a list of strings")
        return tuple(value)

    try:
        hosts = tuple(ipaddress.ip_network(h, strict=False) for h in strings("hosts"))
    except ValueError:
        raise UsageError(f"{where}.hosts: addresses or networks (10.0.0.0/24)") from None
    called = item.get("calledAE")
    if called is not None and (not isinstance(called, str) or not 0 < len(called) <= 16):
        raise UsageError(f"{where}.calledAE: an AE title of 1 to 16 characters")
    pixels = item.get("pixels")
    if pixels is not None and (not isinstance(pixels, str) or pixels.lower() not in MODES):
        raise UsageError(f"{where}.pixels: one of {', '.join(MODES)}")
    return Route(name=name, called_ae=called, calling_ae=strings("callingAE"), hosts=hosts,
                 config_file=path("configFile"), key_file=path("keyFile"),
                 profile=item.get("profile"), options=strings("options"),
                 pixels=pixels.lower() if pixels is not None else None,
                 forward=item.get("forward"), forward_folder=path("forwardFolder"),
                 forward_dicomweb=item.get("forwardDicomweb"))

