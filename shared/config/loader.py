"""ConfigLoader: base YAML -> environment overlay -> environment overrides -> Key Vault secrets.

The result is a validated, frozen `Settings`. Any problem is a `ConfigError` whose message
is one line naming the setting or file at fault.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from pydantic import ValidationError

from shared.config import env as env_table
from shared.config.keyvault import SecretFetcher, fetch_keyvault_secrets
from shared.config.models import Settings
from shared.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

_ENV_ALIASES = {
    "dev": "local",
    "development": "local",
    "local": "local",
    "test": "test",
    "k8s": "k8s-local",
    "k8s-local": "k8s-local",
    "stage": "staging",
    "staging": "staging",
    "prod": "production",
    "production": "production",
}
OVERRIDE_MODES = ("all", "secrets-only", "none")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def normalize_env(raw: str | None) -> str:
    """Map the many spellings of APP_ENV to one of the known environments."""
    value = (raw or "local").strip().lower()
    try:
        return _ENV_ALIASES[value]
    except KeyError:
        known = ", ".join(sorted(set(_ENV_ALIASES)))
        raise ConfigError(f"APP_ENV={raw!r} is not a known environment (use one of: {known})") from None


def _parse(setting: env_table.EnvSetting, raw: str) -> Any:
    if setting.kind == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{setting.name}={raw!r} is not a boolean (use true or false)")
    if setting.kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{setting.name}={raw!r} is not an integer") from None
    if setting.kind == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if setting.kind == "map":
        pairs = [part.partition("=") for part in raw.split(",") if part.strip()]
        if any(not k.strip() or not sep or not v.strip() for k, sep, v in pairs):
            raise ConfigError(f"{setting.name}={raw!r} must be comma-separated name=value pairs")
        return {k.strip(): v.strip() for k, _, v in pairs}
    return raw


def _set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    node = tree
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _deep_merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path.name}{where}: malformed YAML") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: top level must be a mapping")
    return data


class ConfigLoader:
    """Loads `Settings` from files, the environment and (optionally) Azure Key Vault."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        config_dir: Path | None = None,
        secret_fetcher: SecretFetcher | None = None,
    ) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._dir = config_dir or CONFIG_DIR
        self._secret_fetcher = secret_fetcher

    def load(self) -> Settings:
        env = self._environ
        app_env = normalize_env(env.get("APP_ENV"))
        mode = (env.get("CONFIG_ENV_OVERRIDE_MODE") or ("all" if app_env in ("local", "test") else "secrets-only")).lower()
        if mode not in OVERRIDE_MODES:
            raise ConfigError(f"CONFIG_ENV_OVERRIDE_MODE={mode!r} must be one of {', '.join(OVERRIDE_MODES)}")

        tree = _read_yaml(self._dir / "config.yaml")
        overlay = self._dir / f"config.{app_env}.yaml"
        if overlay.exists():
            tree = _deep_merge(tree, _read_yaml(overlay))
        _set_path(tree, "app.env", app_env)

        # Key Vault switches are bootstrap settings: always read, whatever the mode.
        for setting in env_table.BOOTSTRAP:
            if setting.path and setting.name != "APP_ENV" and env.get(setting.name):
                _set_path(tree, setting.path, _parse(setting, env[setting.name]))

        if mode != "none":
            for setting in env_table.OVERRIDES:
                raw = env.get(setting.name)
                if not raw or (mode == "secrets-only" and not setting.secret):  # empty = unset
                    continue
                value = _parse(setting, raw)
                if setting.kind == "map":
                    node = tree
                    for part in setting.path.split("."):
                        node = node.setdefault(part, {})
                    node.update(value)  # merged: the groups not named keep their configured limits
                elif setting.name == "MARKET_PROVIDERS":
                    kinds = tree.get("market", {}).get("providers") or {"quote": [], "history": [], "fundamentals": [], "news": [], "search": []}
                    _set_path(tree, "market.providers", {kind: list(value) for kind in kinds})
                else:
                    _set_path(tree, setting.path, value)

        settings = self._validate(tree)
        if settings.keyvault.enabled:
            settings = self._apply_keyvault(settings, tree)
        self._check_required(settings, env)
        return settings

    def _validate(self, tree: dict[str, Any]) -> Settings:
        try:
            return Settings.model_validate(tree)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"config setting {where}: {first['msg']}") from None

    def _apply_keyvault(self, settings: Settings, tree: dict[str, Any]) -> Settings:
        url = settings.keyvault.vault_url
        if not url:
            raise ConfigError("USE_AZURE_KEYVAULT=true needs AZURE_KEYVAULT_URI or KEYVAULT_NAME")
        try:
            secrets = fetch_keyvault_secrets(url, env_table.KEYVAULT_SECRETS, fetcher=self._secret_fetcher)
        except ConfigError:
            if settings.app.env == "local":
                log.warning("Key Vault unreachable; continuing with local settings")
                return settings
            raise
        for name, value in secrets.items():
            setting = env_table.by_name(name)
            if setting and setting.path:
                _set_path(tree, setting.path, value)
        return self._validate(tree)

    @staticmethod
    def _check_required(settings: Settings, env: Mapping[str, str]) -> None:
        if settings.app.env in ("local", "test"):
            return
        if env.get("LOCAL_DEV_API_KEY") or settings.auth.local_dev_api_key:
            raise ConfigError(f"LOCAL_DEV_API_KEY must not be set when APP_ENV={settings.app.env}")
        needs: list[tuple[str, Callable[[Settings], bool]]] = [
            ("MONGODB_URI", lambda s: s.mongodb.uri is not None),
            ("OPENAI_API_KEY", lambda s: s.models.provider != "openai" or s.models.openai.api_key is not None),
            ("GROK_API_KEY", lambda s: s.models.provider != "grok" or s.models.grok.api_key is not None),
            ("ALPHA_VANTAGE_API_KEY", lambda s: not any("alpha_vantage" in v for v in s.market.providers.values())
             or s.market.alpha_vantage.api_key is not None),
        ]
        for name, ok in needs:
            if not ok(settings):
                raise ConfigError(f"{name} is required when APP_ENV={settings.app.env}")


def load_settings(environ: Mapping[str, str] | None = None, **kw: Any) -> Settings:
    return ConfigLoader(environ, **kw).load()
