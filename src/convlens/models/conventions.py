"""The model conventions the explain methods rely on: checked, and restored where a rewrite can.

Why they matter: a module called twice per forward hands hooks two tensors (grad-cam then pairs the
activations of one call with the gradients of the other); captum's guided backprop and deconvnet
rewrite the gradient of ``nn.ReLU`` modules only, so a ``F.relu`` in ``forward`` escapes them; an
in-place operation overwrites a tensor that a hook captured. Each gives a wrong map, silently.

:func:`violations` lists every break. :func:`adapt` returns the model itself when there is none,
and otherwise a copy (in eval mode, for explaining) where each offending module's own ``forward``
is traced with ``torch.fx``, its children kept as leaves, and replaced by the traced graph with:
every extra call of a reused parameter-free module (a ReLU, a pool) given its own copy (``relu``,
then ``relu_1``, ...), every functional ReLU turned into an ``nn.ReLU`` child, and every in-place
operation made out-of-place (later reads of the overwritten tensor read the result instead).
Rewritten modules keep their names and places, so hooks on them and on their parents still fire;
Python-level branches of a rewritten ``forward`` (on ``self.training``, on flags) are fixed as
they were when traced, in eval mode. A break no rewrite can mend (weights shared between calls, an
untraceable ``forward``, one with optional arguments, whose values tracing would fix) is refused
with :class:`ConventionError` naming the modules. torch.fx offers the tracing; no library offers
these checks, so they are written here.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

from torch import fx, nn

from convlens.models.fx_rewrite import ChildrenAsLeaves, ModuleUses, Rewrite

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
#: Each checked model -> (its modules' ids when checked, its violations); weak, so models still die.
_CHECKED: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], list[str]]] = weakref.WeakKeyDictionary()


class ConventionError(ValueError):
    """A model that breaks the conventions in a way :func:`adapt` cannot mend."""


def violations(model: nn.Module) -> list[str]:
    """Every break of the conventions, as ``"<module> (<type>): <problem>"``; empty when none."""
    return [str(finding) for finding in _Pass(model, apply=False).run()]


def check_conventions(model: nn.Module) -> None:
    """Raise :class:`ConventionError` unless ``model`` follows the conventions, naming how to fix it.

    The fx-traced check runs once per model: the result is cached with the ids of the model's
    modules, so a submodule swapped in later (a rewrite) triggers a fresh check, while a module's
    attributes changed in place (``relu.inplace = True`` after the first call) are not seen again:
    models are not normally changed after construction, and walking ``modules()`` stays cheap.
    """
    modules = tuple(map(id, model.modules()))
    cached = _CHECKED.get(model)
    if cached is None or cached[0] != modules:
        cached = _CHECKED[model] = (modules, violations(model))
    found = cached[1]
    if found:
        shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
        raise ConventionError(
            f"{type(model).__name__} breaks the model conventions (one nn.ReLU module per use, none in place, no "
            f"F.relu in forward), so its maps would be wrong: {shown}. Explain convlens.models.adapt(model) instead."
        )


def conforming(function: Callable[Concatenate[nn.Module, P], R]) -> Callable[Concatenate[nn.Module, P], R]:
    """Decorates a function taking the model first so that it refuses a non-conforming model."""

    @functools.wraps(function)
    def checked(model: nn.Module, *args: P.args, **kwargs: P.kwargs) -> R:
        check_conventions(model)
        return function(model, *args, **kwargs)

    return checked


def adapt(model: nn.Module) -> nn.Module:
    """``model`` when it follows the conventions; otherwise an adapted copy (see the module docstring).

    Raises :class:`ConventionError` naming the modules that cannot be adapted.
    """
    findings = _Pass(model, apply=False).run()
    if not findings:
        return model
    fatal = [str(finding) for finding in findings if not finding.fixable]
    if fatal:
        raise ConventionError(
            f"{type(model).__name__} breaks the model conventions (one nn.ReLU module per use, none in place, no "
            "F.relu in forward), and these modules cannot be adapted, so its maps would be wrong: " + "; ".join(fatal)
        )
    adapted = _Pass(copy.deepcopy(model).eval(), apply=True)
    adapted.run()
    remaining = violations(adapted.model)
    if remaining:
        raise RuntimeError(f"adapting {type(model).__name__} left conventions broken: {'; '.join(remaining)}")
    _log_changes(type(model).__name__, findings)
    return adapted.model


def _log_changes(model: str, findings: list[Finding]) -> None:
    """One INFO line per kind of change, naming (the first few of) the modules it was made in."""
    by_problem: dict[str, list[str]] = {}
    for finding in findings:
        by_problem.setdefault(f"{finding.problem} [{finding.kind}]", []).append(finding.module or "<model>")
    for problem, modules in by_problem.items():
        shown = ", ".join(modules[:4]) + (f" and {len(modules) - 4} more" if len(modules) > 4 else "")
        log.info("adapted %s to the model conventions: %s: %s", model, problem, shown)


@dataclass(frozen=True)
class Finding:
    module: str
    kind: str
    problem: str
    fixable: bool = True

    def __str__(self) -> str:
        return f"{self.module or '<model>'} ({self.kind}): {self.problem}"


@dataclass
class _Pass:
    """One walk over ``model``'s modules: finds the breaks and, when ``apply``, mends them."""

    model: nn.Module
    apply: bool
    findings: list[Finding] = field(default_factory=list)
    graphs: dict[str, fx.Graph] = field(default_factory=dict)
    uses: ModuleUses = field(init=False)

    def run(self) -> list[Finding]:
        modules = list(self.model.named_modules())
        self.uses = ModuleUses(self.apply, {id(module) for _, module in modules if getattr(module, "inplace", False)})
        for name, module in modules:
            self._trace(name, module)
        for name, module in reversed(modules):  # children first: a rewritten parent takes the mended children
            self._check_module(name, module)
        order = {name: index for index, (name, _) in enumerate(modules)}
        return sorted(dict.fromkeys(self.findings), key=lambda finding: order[finding.module])

    def _trace(self, name: str, module: nn.Module) -> None:
        if not _has_own_forward(module):
            return
        try:
            graph = ChildrenAsLeaves().trace(module)
        except Exception as error:  # fx raises many types; each means the module cannot be checked
            first_line = (str(error).splitlines() or [type(error).__name__])[0]
            self._report(
                name, module, f"forward cannot be traced by torch.fx ({first_line}), so it cannot be checked", False
            )
            return
        self.graphs[name] = graph
        for node in graph.nodes:
            if node.op == "call_module":
                self.uses.calls[id(module.get_submodule(node.target))] += 1

    def _check_module(self, name: str, module: nn.Module) -> None:
        if id(module) in self.uses.inplace:
            self._report(name, module, "operates in place (inplace=True)")
            if self.apply:
                module.inplace = False
        graph = self.graphs.get(name)
        if graph is None:
            return
        rewrite = Rewrite(module, graph, self.uses)
        found = [problem for node in list(graph.nodes) for problem in rewrite.visit(node)]
        for problem, fixable in found:
            self._report(name, module, problem, fixable)
        if found and _has_optional_arguments(module):
            self._report(name, module, "forward takes optional arguments, which a traced graph would fix", False)
        elif self.apply and rewrite.changed:
            self._replace(name, rewrite.graph_module())

    def _report(self, name: str, module: nn.Module, problem: str, fixable: bool = True) -> None:
        self.findings.append(Finding(name, type(module).__name__, problem, fixable))

    def _replace(self, name: str, new: nn.Module) -> None:
        if not name:
            self.model = new
            return
        parent, _, child = name.rpartition(".")
        setattr(self.model.get_submodule(parent), child, new)


def _has_own_forward(module: nn.Module) -> bool:
    """Modules whose ``forward`` is theirs to check: not torch.nn's own layers (but its Sequential)."""
    forward = type(module).forward
    if forward is nn.Module.forward:  # ModuleList, ModuleDict: containers without a forward
        return False
    return isinstance(module, nn.Sequential) or not type(module).__module__.startswith("torch.nn")


def _has_optional_arguments(module: nn.Module) -> bool:
    parameters = inspect.signature(module.forward).parameters.values()
    return any(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)
