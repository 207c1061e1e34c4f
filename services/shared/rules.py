"""The one exception domain code raises: a command breaks a numbered rule. Pure, no I/O."""


class RuleViolation(Exception):
    """The command breaks `rule` (an id from RULES.md); becomes a CommandRejected event."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason
