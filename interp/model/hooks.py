"""Hook points: named identity modules where activations can be read or replaced.

Modelled on TransformerLens' HookPoint: every intermediate worth reading is passed through a
``HookPoint`` whose dotted module name (``attention_layer.hook_pattern``) is the public name of
that activation. Hooks are only ever installed inside a context manager that removes them on exit,
so a model can never be left in an edited state by a probe that raised.
"""
from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Callable, Iterator, Sequence
from typing import Union

import torch
from torch import nn

# A hook receives the activation and the HookPoint; it returns a replacement tensor or None.
HookFn = Callable[[torch.Tensor, "HookPoint"], Union[torch.Tensor, None]]
# A hook point is selected by its exact name, a glob pattern, or a predicate on the name.
NameFilter = Union[str, Callable[[str], bool]]


class HookPoint(nn.Module):
    """Identity module marking an activation; ``shape`` documents its layout."""

    def __init__(self, shape: str = "") -> None:
        super().__init__()
        self.name: str = ""
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return self.shape


def _matches(name_filter: NameFilter, name: str) -> bool:
    if callable(name_filter):
        return bool(name_filter(name))
    return name == name_filter or fnmatch.fnmatchcase(name, name_filter)


class HookedModule(nn.Module):
    """Base class giving a module named hook points, ``hooks()``, ``run_with_hooks`` and ``run_with_cache``."""

    def setup_hooks(self) -> None:
        """Name every HookPoint after its dotted module path; call at the end of ``__init__``."""
        self.hook_dict: dict[str, HookPoint] = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_dict[name] = module

    def hook_points(self, name_filter: NameFilter = "*") -> list[HookPoint]:
        found = [hp for name, hp in self.hook_dict.items() if _matches(name_filter, name)]
        if not found and isinstance(name_filter, str):
            raise KeyError(
                f"no hook point matches {name_filter!r}; this model has: {', '.join(self.hook_dict)}"
            )
        return found

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Sequence[tuple[NameFilter, HookFn]]) -> Iterator["HookedModule"]:
        """Install forward hooks for the duration of the ``with`` block; always removed on exit."""
        handles = []
        try:
            for name_filter, fn in fwd_hooks:
                for hp in self.hook_points(name_filter):
                    handles.append(hp.register_forward_hook(_adapt(fn)))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def run_with_hooks(self, x: torch.Tensor, fwd_hooks: Sequence[tuple[NameFilter, HookFn]]) -> torch.Tensor:
        with self.hooks(fwd_hooks):
            return self(x)

    def run_with_cache(
        self, x: torch.Tensor, names_filter: NameFilter = "*", fwd_hooks: Sequence[tuple[NameFilter, HookFn]] = ()
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run the model and return (output, {hook name: activation}); optional extra hooks run first."""
        cache: dict[str, torch.Tensor] = {}

        def save(act: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = act.detach()

        with self.hooks([*fwd_hooks, (names_filter, save)]):
            out = self(x)
        return out, cache


def _adapt(fn: HookFn):
    def torch_hook(module: HookPoint, inputs, output):
        return fn(output, module)

    return torch_hook
