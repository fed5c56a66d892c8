"""Room: fleet (pure). Alert rules and their evaluation; no I/O, no clock (``now`` is an argument).

``parse_rules(doc)`` turns a TOML-shaped document into a :class:`RuleSet`;
``evaluate(rule, state, inputs, now)`` runs one cycle of one rule and returns its new
:class:`AlertState` (plain data the server persists) and the :class:`Transition` list (what the
activity log records and the notifiers send). ``evaluate_all`` runs every rule of a cycle.
"""

from .engine import evaluate, evaluate_all
from .inputs import Inputs, NodeInfo, NodeInput, StreamInput
from .rules import (
    BatteryLowRule,
    ClockSkewRule,
    MaintenanceWindow,
    NodeRule,
    NodeStatusRule,
    QueueBacklogRule,
    RateOfChangeRule,
    Rule,
    RuleError,
    RuleSet,
    Scope,
    Silence,
    StaleRule,
    StreamRule,
    ThresholdRule,
    parse_duration,
    parse_rules,
)
from .state import AlertState, AlertStatus, SubjectState, Transition, TransitionKind

__all__ = [
    "AlertState",
    "AlertStatus",
    "BatteryLowRule",
    "ClockSkewRule",
    "Inputs",
    "MaintenanceWindow",
    "NodeInfo",
    "NodeInput",
    "NodeRule",
    "NodeStatusRule",
    "QueueBacklogRule",
    "RateOfChangeRule",
    "Rule",
    "RuleError",
    "RuleSet",
    "Scope",
    "Silence",
    "StaleRule",
    "StreamInput",
    "StreamRule",
    "SubjectState",
    "ThresholdRule",
    "Transition",
    "TransitionKind",
    "evaluate",
    "evaluate_all",
    "parse_duration",
    "parse_rules",
]
