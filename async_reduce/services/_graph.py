"""Who waits for whose start: the graph that finds start cycles.

While the start of service S waits for the start of service X (S's factory
called ``use(X)`` and X is not running yet), the graph holds an edge S -> X.
A start cycle is a deadlock: every start in it waits for the next.  Edges are
only added, and checked, at the moment one start begins waiting for another,
so a cycle is found when its last edge would close it, before anything waits.
Running services never take part: using one returns at once.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["WaitGraph"]


class WaitGraph:
    """Edges between service keys, with the names of their ends."""

    __slots__ = ("_edges", "_names")

    def __init__(self) -> None:
        # from key -> {to key: number of waits along this edge}
        self._edges: dict[Hashable, dict[Hashable, int]] = {}
        self._names: dict[Hashable, str] = {}

    def cycle_through(
        self, waiter: Hashable, waiter_name: str, target: Hashable, target_name: str
    ) -> tuple[str, ...] | None:
        """The cycle that ``waiter`` waiting for ``target`` would close, as
        names (``waiter, target, ..., waiter``), or ``None``."""
        if target == waiter:
            return (waiter_name, waiter_name)
        # Depth-first search for a path target -> ... -> waiter.
        path = [target]
        iters = [iter(self._edges.get(target, ()))]
        seen = {target}
        while iters:
            step = next(iters[-1], None)
            if step is None:
                iters.pop()
                path.pop()
                continue
            if step == waiter:
                names = [waiter_name, target_name]
                names.extend(self._names.get(key, "?") for key in path[1:])
                names.append(waiter_name)
                return tuple(names)
            if step in seen:
                continue
            seen.add(step)
            path.append(step)
            iters.append(iter(self._edges.get(step, ())))
        return None

    def add(
        self, waiter: Hashable, waiter_name: str, target: Hashable, target_name: str
    ) -> None:
        """Record that ``waiter``'s start waits for ``target``'s."""
        targets = self._edges.setdefault(waiter, {})
        targets[target] = targets.get(target, 0) + 1
        self._names[waiter] = waiter_name
        self._names[target] = target_name

    def remove(self, waiter: Hashable, target: Hashable) -> None:
        """The wait recorded by :meth:`add` is over."""
        targets = self._edges[waiter]
        count = targets[target] - 1
        if count:
            targets[target] = count
            return
        del targets[target]
        if not targets:
            del self._edges[waiter]
        for key in (waiter, target):
            if key not in self._edges and not any(
                key in edges for edges in self._edges.values()
            ):
                self._names.pop(key, None)

    def __len__(self) -> int:
        return sum(len(targets) for targets in self._edges.values())
