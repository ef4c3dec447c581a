"""Thin triggers: one Blueprint per domain. Each handler is parse -> call -> render."""
