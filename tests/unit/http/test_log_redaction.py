"""A secret placed in config, a header or a query string never reaches the logs."""

import io
import json
import logging

import pytest

from shared.logging import JsonFormatter, install_filters, redact, register_secrets


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("redaction-test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    install_filters(logger)
    yield logger, stream
    logger.removeHandler(handler)


def test_config_secret_registered_at_core_build_is_masked(log_stream):
    logger, stream = log_stream
    register_secrets(["cfg-secret-Zx81!"])
    logger.info("connecting with key %s", "cfg-secret-Zx81!")
    assert "cfg-secret-Zx81!" not in stream.getvalue()
    assert "***" in stream.getvalue()


@pytest.mark.parametrize(
    "line,secret",
    [
        ("GET https://www.alphavantage.co/query?function=GLOBAL_QUOTE&symbol=IBM&apikey=AVKEY123", "AVKEY123"),
        ("headers={'Authorization': 'Bearer sak_abcdefghijklmnopqrstuvwx'}", "sak_abcdefghijklmnopqrstuvwx"),
        ("X-API-Key: sak_zyxwvutsrqponmlkjihgfedc", "sak_zyxwvutsrqponmlkjihgfedc"),
        ("mongodb://app:S3cretPw@db.example:27017/?authSource=admin", "S3cretPw"),
        ("rediss://:RedisPw99@cache.example:10000/0", "RedisPw99"),
        ("openai key sk-proj-ABCDEFGHIJKLMNOPQRSTUV", "sk-proj-ABCDEFGHIJKLMNOPQRSTUV"),
        ("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=AbCdEf==;", "AbCdEf=="),
        ("password=hunter2 user=bob", "hunter2"),
    ],
)
def test_patterns_are_redacted(log_stream, line, secret):
    logger, stream = log_stream
    logger.warning(line)
    out = stream.getvalue()
    assert secret not in out
    assert json.loads(out)["msg"]  # still one JSON line


def test_exception_text_is_redacted(log_stream):
    logger, stream = log_stream
    try:
        raise ValueError("failed https://api/x?apikey=EXCSECRET1")
    except ValueError:
        logger.exception("upstream failed")
    assert "EXCSECRET1" not in stream.getvalue()


def test_redact_keeps_innocent_text():
    assert redact("quote AAPL 189.5 from yahoo") == "quote AAPL 189.5 from yahoo"


def test_request_logs_never_contain_credentials(client, caplog):
    """Drive real requests with secrets in headers and query; the pipeline's logs stay clean."""
    with caplog.at_level(logging.DEBUG):
        client.get("/api/v1/admin/metrics?apikey=QUERYSECRET9", headers={"Authorization": "Bearer HEADERSECRET9"})
        client.get("/api/health", headers={"X-API-Key": "HEADERSECRET8"})
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for secret in ("QUERYSECRET9", "HEADERSECRET9", "HEADERSECRET8"):
        assert secret not in text
    assert any(getattr(r, "route", None) == "/api/health" for r in caplog.records)
