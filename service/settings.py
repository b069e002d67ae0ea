"""Settings of the HTTP service: everything the pipeline needs (inherited) plus the service's own knobs.

A subclass rather than a wrapper, so one `ServiceSettings` can be handed to `QAPipeline` as it is and the same
`QA_*` environment, `.env` and `qa.toml` configure both.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from qa.settings import Settings


class ServiceSettings(Settings):
    host: str = Field("127.0.0.1", description="Interface to listen on; loopback unless exposed on purpose.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    api_key: SecretStr | None = Field(
        None, description="When set, every endpoint but /health (and the static page) needs it in the X-API-Key header."
    )
    admin_api_key: SecretStr | None = Field(
        None,
        description="Key of the /admin endpoints (reload, document updates); QA_API_KEY when unset. With neither "
        "set, the admin endpoints are disabled.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS, comma-separated in QA_CORS_ORIGINS ('*' for any); none by default.",
    )
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Larger request bodies get 413.")
    batch_max: int = Field(32, ge=1, le=1000, description="Most questions in one /ask/batch call.")
    update_max_documents: int = Field(
        256, ge=1, le=100_000, description="Most documents (added, replaced or deleted) in one /admin/documents call."
    )
    ask_concurrency: int = Field(
        4, ge=1, le=64, description="Questions answered at once; more requests wait (the models are CPU-bound)."
    )
    torch_threads: int = Field(
        1,
        ge=0,
        le=256,
        description="Intra-op threads of torch in `qa serve` (process-wide); questions already run in parallel, "
        "and more threads per question oversubscribe the cores. 0 keeps torch's default (one per core).",
    )
    warm_up_in_background: bool = Field(
        False, description="Serve /health at once and load the pipeline behind it (/ready says when it is done)."
    )
    log_level: str = Field("info", description="Level of the service's JSON logs.")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        """`QA_CORS_ORIGINS=https://a.example,https://b.example` is friendlier than a JSON list."""
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}:
            raise ValueError(f"unknown log level {value!r}; choose one of: critical, error, warning, info, debug")
        return level.lower()
