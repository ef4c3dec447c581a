"""Telemetry gets the same redacted records as the JSON log: a handler added after start-up
(as the Functions worker's forwarding handler is) is covered by install_filters, and extras are
redacted too."""

import logging

from shared.logging import install_filters, register_secrets


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_late_handler_and_extras_are_redacted():
    register_secrets(["telemetry-secret-123"])
    logger = logging.getLogger("telemetry-test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    capture = Capture()
    logger.addHandler(capture)
    try:
        install_filters(logger)
        logger.info("key=%s", "telemetry-secret-123", extra={"detail": "Bearer abcdefghijklmnop telemetry-secret-123"})
        record = capture.records[0]
        assert "telemetry-secret-123" not in record.getMessage()
        assert "telemetry-secret-123" not in record.detail and "abcdefghijklmnop" not in record.detail
    finally:
        logger.removeHandler(capture)
