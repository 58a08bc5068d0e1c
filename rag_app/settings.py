"""Settings: the one configuration object every stage reads (env prefix RAG_, optional TOML)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "RAG_CONFIG"
# The names of rag_app/serving/presets.py PRESETS (a test keeps the two in step).
LlmPreset = Literal["auto", "smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
DEFAULT_CONFIG_NAME = "rag.toml"


def config_file_path() -> Path | None:
    """The TOML file in force: $RAG_CONFIG, else ./rag.toml when it exists."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Every knob of rag_app. Sources, highest first: init args, RAG_* env, TOML file, defaults."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_default=True)

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path("~/.rag_app"),
        description="Folder holding knowledge bases, prepared models, server logs and pid files.",
    )
    kb: str = Field(default="default", description="Knowledge base used when none is named.")

    # --- ingestion ---------------------------------------------------------------------------
    embedding_model: str = Field(
        default="",
        description="sentence-transformers model folder or name; empty = bundled all-MiniLM-L6-v2.",
    )
    embedding_batch_size: int = Field(default=64, ge=1, description="Texts embedded per batch.")
    embedding_int8: bool = Field(
        default=True,
        description="Ingestion embeds documents with an int8-quantised ONNX copy of the model "
        "(made once; 1.8x faster on CPU, same SciFact recall@10: 0.789 vs 0.786 in full "
        "precision); questions are always embedded in full precision. false = full precision.",
    )
    chunk_size: int = Field(default=200, ge=16, description="Chunk size in embedding tokens.")
    chunk_overlap: int = Field(default=32, ge=0, description="Overlap between chunks in tokens.")
    max_file_mb: float = Field(
        default=50.0, gt=0, description="Files larger than this are skipped."
    )
    store: Literal["faiss", "chroma", "postgres"] = Field(
        default="faiss",
        description="Store for new knowledge bases: faiss (FAISS + SQLite, embedded), chroma, "
        "or postgres (Postgres + pgvector at database_url).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="Postgres URL (postgresql://user:password@host:port/db) for store = "
        "postgres; unset = the local server of `rag db start` in the data dir.",
    )
    chroma_url: str | None = Field(
        default=None,
        description="Chroma server URL (chroma run); unset = embedded Chroma in the data dir.",
    )
    ann_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Above this many chunks the FAISS store uses an approximate (HNSW) index.",
    )
    ray_address: str = Field(
        default="",
        description="Ray for `rag ingest --ray`: empty = start a local Ray for the run; auto "
        "or HEAD:6379 = the Ray cluster this machine is a node of (`ray start`). Not ray://: "
        "Ray Data does not run through Ray Client.",
    )
    ray_workers: int = Field(
        default=0,
        ge=0,
        description="Embedding actors of `rag ingest --ray` (each loads the model once); 0 = one "
        "per GPU Ray reports, else one per CPU (at most 2 on a local Ray).",
    )

    # --- LLM ---------------------------------------------------------------------------------
    llm_preset: LlmPreset = Field(
        # auto: Qwen-1.5B unless the machine lacks the RAM for it, then Qwen-0.5B; both answer
        # far better than the 135M model (README "Which preset").
        default="auto",
        description="Model preset served locally (`rag model prepare --preset`): auto (the "
        "1.5B when the machine has the RAM for it, else the 0.5B), smollm2-135m, "
        "qwen2.5-coder-0.5b or qwen2.5-coder-1.5b; llm_model and llm_base_url override it.",
    )
    llm_model: str = Field(
        default="",
        description="HF model folder or .gguf file to serve; empty = the llm_preset model",
    )
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint (…/v1). When set, no local vLLM server is started.",
    )
    llm_api_key: SecretStr = Field(
        default=SecretStr("EMPTY"), description="API key sent to the LLM endpoint."
    )
    llm_served_name: str = Field(
        default="", description="Model name to request; empty = ask the server's /v1/models."
    )
    llm_host: str = Field(default="127.0.0.1", description="Host the local vLLM server binds.")
    llm_port: int = Field(
        default=8000, ge=1, le=65535, description="Port of the local vLLM server."
    )
    llm_max_model_len: int = Field(default=4096, ge=256, description="vLLM --max-model-len.")
    llm_startup_timeout: float = Field(
        default=300.0, gt=0, description="Seconds to wait for a local server to become ready."
    )
    llm_request_timeout: float = Field(
        default=60.0, gt=0, description="Seconds before an LLM request is abandoned."
    )
    llm_max_retries: int = Field(default=1, ge=0, description="Retries of a failed LLM request.")
    llm_idle_minutes: float = Field(
        default=30.0,
        ge=0,
        description="A local vLLM server started on demand (ask, chat, ui, serve, eval) stops "
        "itself after this many minutes without requests, freeing its memory; it starts again "
        "when needed. 0 = never. `rag llm serve` keeps its server unless given --idle-minutes.",
    )
    llm_max_inflight: int = Field(
        default=0,
        ge=0,
        description="Most requests in flight per endpoint; more wait in the client, so a "
        "timeout counts only the server's work. 0 = adaptive: starts at 2 for a server on "
        "this machine (8 for another host), halves when a request is slow, grows when fast.",
    )
    llm_temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(default=256, ge=1, description="Max tokens generated per answer.")
    llm_extra_args: list[str] = Field(
        default_factory=list, description="Extra command-line arguments for the vLLM server."
    )
    llm_dtype: Literal["auto", "bfloat16", "float32"] = Field(
        default="auto",
        description="vLLM --dtype; auto = bfloat16 on CPUs with AVX512-BF16 or AMX, float32 on "
        "other CPUs (bf16 is several times slower there), vLLM's own choice on GPUs.",
    )

    # --- answering ---------------------------------------------------------------------------
    top_k: int = Field(default=4, ge=1, description="Passages given to the model.")
    fetch_k: int = Field(default=20, ge=1, description="Candidates per retriever before fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant.")
    use_mmr: bool = Field(default=False, description="Diversify passages with MMR.")
    mmr_lambda: float = Field(default=0.7, ge=0, le=1, description="MMR relevance/diversity mix.")
    min_relevance: float = Field(
        default=0.25,
        description="Best dense cosine below this means nothing relevant was found (abstain).",
    )
    context_sentences: int | None = Field(
        default=None,
        ge=0,
        description="Show the model only the N passage sentences closest to the question (0 = "
        "whole passages); unset = the model preset's width (3 for qwen2.5-coder-1.5b, 1 for the "
        "smaller models, which extract far better from a short context).",
    )
    constrain_answers: bool = Field(
        default=True,
        description="Let the model answer only with a short span of the shown passages (or the "
        "abstention phrase), enforced by vLLM structured outputs; off = free text, then grounded.",
    )
    check_answers: bool = Field(
        default=True,
        description="Ask the model one short yes/no question per grounded answer (does the quoted "
        "sentence answer the question with it?); its log-odds is an answer-gate signal.",
    )
    route_to_agent: bool = Field(
        default=True,
        description="Direct-mode questions that compare two named things ('which is older, A or "
        "B?') or ask for a difference ('how many metres longer is A than B?') go to the agent, "
        "which looks up both and calculates; a passage span alone cannot answer them. The "
        "question patterns are English.",
    )
    answer_gate: str = Field(
        default="auto",
        description="Answer gate: auto = the one fitted for llm_preset (rag_app/answering/gates/), "
        "a path to a gate JSON (bench/fit_gate.py), or off = every grounded span is confident.",
    )
    gate_answer_at: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Gate probability needed for a confident answer; unset = the gate's own.",
    )
    gate_tentative_at: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Gate probability needed for a tentative answer (shown as 'probably X, not "
        "verified' with its quote); unset = the gate's own.",
    )
    min_confidence: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Without a fitted gate (a custom model): answers whose mean token "
        "probability is below this are tentative, more than 0.1 below it abstain.",
    )
    support_threshold: float = Field(
        default=0.62, ge=0, le=1, description="Sentence support score needed to count as cited."
    )

    # --- agent -------------------------------------------------------------------------------
    agent_max_steps: int = Field(default=6, ge=1, description="Most ReAct steps per question.")
    agent_step_timeout: float = Field(default=60.0, gt=0, description="Seconds per agent step.")
    agent_total_timeout: float = Field(default=300.0, gt=0, description="Seconds per agent run.")
    agent_max_observation_chars: int = Field(
        default=2000, ge=100, description="Observations are cut to this many characters."
    )

    # --- UI ----------------------------------------------------------------------------------
    answer_threads: int = Field(
        default=1,
        ge=0,
        description="Torch and FAISS threads in answering processes (ask, chat, UI, eval); "
        "0 = library default. 1 stops spin-waiting against a vLLM server on the same cores.",
    )
    ui_port: int = Field(default=8501, ge=1, le=65535, description="Port of the Streamlit UI.")
    max_upload_mb: float = Field(default=20.0, gt=0, description="Largest accepted upload.")

    # --- HTTP API (rag serve) ----------------------------------------------------------------
    api_host: str = Field(
        default="127.0.0.1",
        description="Address `rag serve` binds; anything beyond loopback needs an API key "
        "(`rag keys create`).",
    )
    api_port: int = Field(default=8300, ge=1, le=65535, description="Port of `rag serve`.")
    api_rate_limit: int = Field(
        default=600, ge=0, description="Requests per minute per API key (0 = no limit)."
    )
    job_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="store = postgres: an ingest job whose replica sends no heartbeat for this "
        "long is taken over by another replica.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = config_file_path()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    # --- derived paths (one place, so every module agrees) -----------------------------------
    @property
    def root(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def kb_root(self) -> Path:
        return self.root / "kb"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def run_dir(self) -> Path:
        """Server pid and log files."""
        return self.root / "run"

    def kb_dir(self, name: str | None = None) -> Path:
        return self.kb_root / (name or self.kb)


def setting_sources(settings: Settings) -> dict[str, str]:
    """For `rag config show`: where each field's value came from (env, toml or default)."""
    toml_path = config_file_path()
    toml_keys: set[str] = set()
    if toml_path is not None and toml_path.is_file():
        import tomllib

        toml_keys = set(tomllib.loads(toml_path.read_text()).keys())
    origin: dict[str, str] = {}
    for name in Settings.model_fields:
        env_name = f"RAG_{name.upper()}"
        if any(k.upper() == env_name for k in os.environ):
            origin[name] = f"env {env_name}"
        elif name in toml_keys:
            origin[name] = f"toml {toml_path}"
        elif name in settings.model_fields_set:
            origin[name] = "argument"
        else:
            origin[name] = "default"
    return origin


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own Settings instead)."""
    from pydantic import ValidationError

    from rag_app.errors import ConfigError

    try:
        return Settings()
    except ValidationError as exc:  # one CLI line: name the setting and where it came from
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        where = f" in {config_file_path()}" if config_file_path() else ""
        raise ConfigError(f"invalid settings{where} or RAG_* env: {problems}") from exc


def redact_url(url: str) -> str:
    """A database URL with its password shown as *** (status lines, logs, errors)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=netloc))


def settings_dump(settings: Settings) -> dict[str, Any]:
    """Effective settings as JSON-friendly values, secrets masked."""
    dumped = settings.model_dump(mode="json")
    dumped["llm_api_key"] = "***" if settings.llm_api_key.get_secret_value() else ""
    if settings.database_url is not None:
        dumped["database_url"] = redact_url(settings.database_url.get_secret_value())
    return dumped
