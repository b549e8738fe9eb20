"""torch.fx pieces of the model-conventions adapter (:mod:`convlens.models.conventions`): a tracer
of one module's own ``forward`` and the node-by-node check and rewrite of its graph."""

from __future__ import annotations

import copy
import operator
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

RELU_FUNCTIONS = {F.relu, F.relu_, torch.relu, torch.relu_}
RELU_METHODS = {"relu", "relu_"}
#: In-place operators (``out += identity``) -> their out-of-place twins, and how they are written.
INPLACE_OPERATORS = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul}
OPERATOR_SYMBOLS = {operator.iadd: "+=", operator.isub: "-=", operator.imul: "*="}
#: Tensor methods whose result shares the input's storage: an in-place op on one alters another tensor.
VIEW_METHODS = {"view", "view_as", "narrow", "select", "transpose", "permute", "squeeze", "unsqueeze", "expand"}


@dataclass
class ModuleUses:
    """What one pass over a model knows across modules: whether it mends (``apply``), the ids of
    modules with ``inplace=True``, how often each module is called over all traced forwards, and
    the reused modules whose first call has kept the original (later calls get copies)."""

    apply: bool
    inplace: set[int]
    calls: Counter[int] = field(default_factory=Counter)
    kept: set[int] = field(default_factory=set)


class ChildrenAsLeaves(fx.Tracer):
    """Traces one module's own ``forward``: every submodule call stays one ``call_module`` node, and
    in-place operators (``+=``) are recorded as such rather than as their out-of-place twins."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return True

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _InplaceProxy(node, self)


class _InplaceProxy(fx.Proxy):
    """A proxy with ``__iadd__`` and friends (``fx.Proxy`` has none, so Python would record ``+``)."""


def _record_inplace(function: object) -> object:
    def method(self: fx.Proxy, other: object) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", function, (self, other), {})

    return method


for _inplace in INPLACE_OPERATORS:
    setattr(_InplaceProxy, f"__{_inplace.__name__}__", _record_inplace(_inplace))


@dataclass
class Rewrite:
    """The checks of one module's traced ``forward``, node by node, and (when the pass applies
    them) the mended graph, with the new children it calls in ``added``."""

    module: nn.Module
    graph: fx.Graph
    uses: ModuleUses
    changed: bool = False
    added: dict[str, nn.Module] = field(default_factory=dict)

    def visit(self, node: fx.Node) -> list[tuple[str, bool]]:
        """The problems of ``node`` as (description, fixable); mends them when the pass applies."""
        if node.op == "call_module":
            return self._module_call(node)
        if node.target in RELU_FUNCTIONS or (node.op == "call_method" and node.target in RELU_METHODS):
            inplace = node.target in (F.relu_, torch.relu_, "relu_") or True in (
                node.kwargs.get("inplace"),
                *node.args[1:],
            )
            self._own_module(node, nn.ReLU(), "relu")
            self._overwrites(node, inplace)
            return [(f"calls {_describe(node)} in forward, which guided backprop and deconvnet do not see", True)]
        if node.op == "call_function" and node.target in INPLACE_OPERATORS:
            return self._inplace_op(node, INPLACE_OPERATORS[node.target])
        if node.op == "call_method" and node.target.endswith("_") and not node.target.startswith("_"):
            out_of_place = node.target[:-1]
            return self._inplace_op(node, out_of_place if callable(getattr(torch.Tensor, out_of_place, None)) else None)
        if node.op == "call_function" and node.kwargs.get("inplace") is True:
            return self._inplace_op(node, node.target, {**node.kwargs, "inplace": False})
        return []

    def _module_call(self, node: fx.Node) -> list[tuple[str, bool]]:
        child = self.module.get_submodule(node.target)
        found = []
        uses = self.uses.calls[id(child)]
        if uses > 1:
            shared = next(child.parameters(), None) is not None
            found.append(
                (
                    f"'{node.target}' is called {uses} times per forward" + (", sharing weights" if shared else ""),
                    not shared,
                )
            )
            if id(child) in self.uses.kept and not shared:
                fresh = copy.deepcopy(child)
                if hasattr(fresh, "inplace"):
                    fresh.inplace = False
                self._own_module(node, fresh, node.target.rpartition(".")[2])
            self.uses.kept.add(id(child))
        if id(child) in self.uses.inplace and self._read_later(node.args[0], node):
            found.append((f"reads a tensor after the in-place '{node.target}' overwrote it", True))
            self._overwrites(node, True)
        return found

    def _inplace_op(self, node: fx.Node, replacement: object, kwargs: dict | None = None) -> list[tuple[str, bool]]:
        """An in-place operation: made out-of-place unless it has no out-of-place twin, or alters a
        view (another tensor too) or the module's input (which the caller may read again)."""
        target = node.args[0] if node.args else None
        risky = isinstance(target, fx.Node) and (target.op == "placeholder" or _is_view(target))
        fixable = replacement is not None and not risky
        if fixable and self.uses.apply:
            node.target = replacement
            node.kwargs = node.kwargs if kwargs is None else kwargs
            self._overwrites(node, True)
        where = " on its input" if isinstance(target, fx.Node) and target.op == "placeholder" else ""
        return [(f"operates in place ({_describe(node)}{where}), overwriting a tensor a hook may hold", fixable)]

    def _own_module(self, node: fx.Node, module: nn.Module, base: str) -> None:
        """Make ``node`` call ``module``, a new child named after ``base``."""
        if not self.uses.apply:
            return
        name, index = base, 0
        while hasattr(self.module, name) or name in self.added:
            index += 1
            name = f"{base}_{index}"
        self.added[name] = module
        node.op, node.target = "call_module", name
        node.args, node.kwargs = node.args[:1], {}
        self.changed = True

    def _overwrites(self, node: fx.Node, inplace: bool) -> None:
        """``node`` no longer alters its first argument: later reads of that tensor read ``node``."""
        if not (inplace and self.uses.apply):
            return
        order = {n: i for i, n in enumerate(self.graph.nodes)}
        target = node.args[0]
        for user in list(target.users):
            if user is not node and order[user] > order[node]:
                user.replace_input_with(target, node)
        self.changed = True

    def _read_later(self, value: fx.Node, node: fx.Node) -> bool:
        order = {n: i for i, n in enumerate(self.graph.nodes)}
        return any(user is not node and order[user] > order[node] for user in value.users)

    def graph_module(self) -> fx.GraphModule:
        """The mended module: the graph's code, every child (in the order the forward calls them,
        then the uncalled ones), parameter and buffer of the original, and the new children."""
        for name, child in self.added.items():
            self.module.add_module(name, child)
        self.graph.lint()
        new = fx.GraphModule(self.module, self.graph, class_name=type(self.module).__name__)
        called = [str(node.target).split(".")[0] for node in self.graph.nodes if node.op == "call_module"]
        children = {name: self.module._modules[name] for name in dict.fromkeys(called + list(self.module._modules))}
        new._modules.clear()
        new._modules.update(children)
        for name, parameter in self.module._parameters.items():
            new.register_parameter(name, parameter)
        for name, buffer in self.module._buffers.items():
            new.register_buffer(name, buffer, persistent=name not in self.module._non_persistent_buffers_set)
        return new


def _describe(node: fx.Node) -> str:
    if node.target in OPERATOR_SYMBOLS:
        return f"'{OPERATOR_SYMBOLS[node.target]}'"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    return f"{getattr(node.target, '__module__', '')}.{getattr(node.target, '__name__', node.target)}".lstrip(".")


def _is_view(node: fx.Node) -> bool:
    """Whether ``node``'s tensor may share storage with another (slices, views)."""
    return (node.op == "call_method" and node.target in VIEW_METHODS) or (
        node.op == "call_function" and node.target is operator.getitem
    )
