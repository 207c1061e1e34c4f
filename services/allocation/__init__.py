"""Allocation: who gets which work (AL rules, AC07, AC16's release, AC19)."""
